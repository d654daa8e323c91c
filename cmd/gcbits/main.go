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
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
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
	if rc, done := noSubcommand("gcbits", usage, errors.New("no command"), args, stdout, stderr); done {
		return rc
	}
	switch args[0] {
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "runtime":
		return runRuntime(args[1:], stdout, stderr)
	default:
		return usageStatus(stderr, "gcbits", fmt.Errorf("unknown command %q", args[0]))
	}
}

// Every command parses its command line the same way: noSubcommand
// deals with a missing subcommand and with help where one is expected;
// newFlagSet makes the flag set of a command that takes flags, parseFlags
// parses it (and prints the usage for -h), and usageStatus reports what
// went wrong and returns the exit status.

// noSubcommand deals with args where the command cmd expects the name of
// a subcommand first: with none, it reports none as bad usage; with a
// word of help, it prints usage. It returns the exit status and true in
// those cases, and false when args[0] is for the caller to look up.
func noSubcommand(cmd, usage string, none error, args []string, stdout, stderr io.Writer) (int, bool) {
	if len(args) == 0 {
		return usageStatus(stderr, cmd, none), true
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0, true
	}
	return 0, false
}

// newFlagSet returns the flag set of the command name, "gcbits bench" for
// instance. It prints nothing, neither errors nor usage: parseFlags
// returns its errors and prints the usage for -h.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs; a command takes no arguments besides its
// flags. For -h it writes usage, then fs's flags, to stdout and returns
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, usage string, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return err
}

// usageItem writes an item of a usage's list to b: its name, and beside it
// the lines of its doc.
func usageItem(b *strings.Builder, name, doc string) {
	fmt.Fprintf(b, "  %-12s %s\n", name, strings.ReplaceAll(doc, "\n", "\n"+strings.Repeat(" ", 2+12+1)))
}

// usageStatus returns the exit status of a command line that the command
// cmd rejected with err: 0 for flag.ErrHelp, the usage having been
// printed; otherwise 2, the status of bad usage, after writing err and
// where to find help on stderr.
func usageStatus(stderr io.Writer, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s -h' for usage.\n", cmd, err, cmd)
	return 2
}
