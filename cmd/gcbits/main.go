// Command gcbits measures gcbits against the allocators it is compared
// with, and runs demos of it.
//
// Usage:
//
//	gcbits bench [flags]   compare the allocators on this machine
//	gcbits demo NAME ...   run a program on the sweep heap and on Go's GC
//	gcbits runtime CMD     build, measure and test the patched Go runtime
//	gcbits help            print this help
//
// Run "gcbits bench -h" for the benchmark's flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `gcbits measures and demonstrates gcbits, an allocator of short-lived
zeroed bitmaps recycled by epochs, as the Go runtime allocates mark bits.

Usage:

	gcbits bench [flags]   compare the allocators on this machine and print
	                       a table (or JSON, or an SVG plot); see gcbits bench -h
	gcbits demo NAME ...   run a program on the sweep heap and on Go's GC;
	                       see gcbits demo -h
	gcbits runtime CMD     build, measure and test the Go runtime patched
	                       with gcbits' design; see gcbits runtime -h
	gcbits help            print this help

Exit status: 0 on success, 1 when a command fails, 2 for bad usage.
`

// run is main without the process: it dispatches the subcommand in args
// and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "gcbits", errors.New("no command"))
	}
	switch args[0] {
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "runtime":
		return runRuntime(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		return usageError(stderr, "gcbits", fmt.Errorf("unknown command %q", args[0]))
	}
}

// usageError writes err, from command cmd, and where to find help, and
// returns the exit status of bad usage.
func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\nRun '%s -h' for usage.\n", cmd, err, cmd)
	return 2
}
