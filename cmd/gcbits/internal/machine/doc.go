// Package machine reads what gcbits' command reports about the machine
// and the process: the processor's name, the memory a run may use, CPU
// time and peak resident memory.
package machine
