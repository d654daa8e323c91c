package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gcbits/gcbits/goruntime"
)

// errStep is wrapped by every error of a toolchain build; the error's text
// names the step that failed.
var errStep = errors.New("gcbits runtime build failed")

// stepError is a failed step of a toolchain build.
type stepError struct {
	step string // "version", "copy", "apply NAME", "make.bash", "install"
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }

func (e *stepError) Unwrap() []error { return []error{errStep, e.err} }

// builder makes a patched copy of a Go installation.
type builder struct {
	stock    string                  // GOROOT to copy and to bootstrap with
	cacheDir string                  // finished toolchains live here, one folder each
	patches  []goruntime.Patch       // applied in order
	series   string                  // release series the patches are for, e.g. go1.26
	step     func(name string)       // called as each step begins, by one goroutine at a time (make.bash's phases by the one reading its output, until makeBash returns); may be nil
	makeEnv  func([]string) []string // adjusts make.bash's environment; may be nil
}

// buildSteps is the number of steps step reports for a full build: copy,
// one per patch, make.bash and its phases (see makePhases), install. A
// build that finds a finished toolchain reports none.
func (b *builder) buildSteps() int { return 3 + len(b.patches) + len(makePhases) }

// makePhases are the prefixes of the lines make.bash prints as it moves
// from one phase to the next.
var makePhases = []string{
	"Building Go cmd/dist",
	"Building Go toolchain1",
	"Building Go bootstrap cmd/go",
	"Building Go toolchain2",
	"Building Go toolchain3",
	"Building packages and commands",
}

// goVersion returns the release of the Go installation at root, from its
// VERSION file.
func goVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		return "", err
	}
	v, _, _ := strings.Cut(string(b), "\n")
	if v = strings.TrimSpace(v); !strings.HasPrefix(v, "go1.") {
		return "", fmt.Errorf("%s: %q is not a Go release", filepath.Join(root, "VERSION"), v)
	}
	return v, nil
}

// target returns the folder the patched copy of a release lives in: its
// name holds the release and a digest of the patches' diffs, so that a
// changed series builds afresh while a reworded commit message does not.
func (b *builder) target(version string) string {
	h := sha256.New()
	io.WriteString(h, version)
	writeDiffs(h, b.patches)
	return filepath.Join(b.cacheDir, version+"-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// writeDiffs writes the diffs of patches to h, without their commit
// messages.
func writeDiffs(h io.Writer, patches []goruntime.Patch) {
	for _, p := range patches {
		diff := p.Data
		if i := bytes.Index(diff, []byte("\ndiff --git ")); i >= 0 {
			diff = diff[i:]
		}
		fmt.Fprintf(h, "\x00%s", diff)
	}
}

// lastStep is the last step of a build: renaming the built tree into place.
const lastStep = "install"

// finished reports whether root holds a built toolchain. Only a finished
// build is ever renamed to a target's name, so its go command is enough.
func finished(root string) bool {
	fi, err := os.Stat(filepath.Join(root, "bin", "go"))
	return err == nil && fi.Mode().IsRegular()
}

// build returns the root of the patched toolchain, building it unless a
// finished one is cached. The build happens in a folder aside and is
// renamed into place only when make.bash has succeeded, so a failed or
// interrupted build never leaves a tree that a later call would take for
// finished.
func (b *builder) build(ctx context.Context) (root string, err error) {
	report := func(s string) {
		if b.step != nil {
			b.step(s)
		}
	}
	version, err := goVersion(b.stock)
	if err != nil {
		return "", &stepError{"version", err}
	}
	if version != b.series && !strings.HasPrefix(version, b.series+".") {
		return "", &stepError{"version", fmt.Errorf("the installed Go at %s is %s, but the patches are for %s", b.stock, version, b.series)}
	}
	root = b.target(version)
	if finished(root) {
		return root, nil
	}
	if err := os.MkdirAll(b.cacheDir, 0o777); err != nil {
		return "", &stepError{"copy", err}
	}
	aside, err := os.MkdirTemp(b.cacheDir, ".build-"+filepath.Base(root)+"-")
	if err != nil {
		return "", &stepError{"copy", err}
	}
	defer func() {
		if err != nil {
			os.RemoveAll(aside)
		}
	}()

	report("copy " + b.stock)
	if err := os.CopyFS(aside, os.DirFS(b.stock)); err != nil {
		return "", &stepError{"copy", err}
	}
	for _, p := range b.patches {
		report("apply " + p.Name)
		if err := applyPatch(ctx, aside, p.Data); err != nil {
			return "", &stepError{"apply " + p.Name, err}
		}
	}
	report("make.bash")
	if err := b.makeBash(ctx, aside, report); err != nil {
		return "", &stepError{"make.bash", err}
	}
	report(lastStep)
	if err := os.Rename(aside, root); err != nil {
		if finished(root) { // another build finished first
			os.RemoveAll(aside)
			return root, nil
		}
		return "", &stepError{lastStep, err}
	}
	return root, nil
}

// applyPatch applies a git format-patch text to the tree at dir with git
// apply, which works outside a repository. GIT_CEILING_DIRECTORIES keeps
// git from finding a repository above dir and applying relative to it.
func applyPatch(ctx context.Context, dir string, patch []byte) error {
	cmd := exec.CommandContext(ctx, "git", "apply", "-p1", "--whitespace=nowarn", "-")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	cmd.Stdin = strings.NewReader(string(patch))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("git apply: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeBash runs src/make.bash in the tree at dir, bootstrapped by the
// stock toolchain, reporting make.bash's phases as steps. A failure's
// error ends with the last lines make.bash printed.
func (b *builder) makeBash(ctx context.Context, dir string, report func(string)) error {
	cmd := exec.CommandContext(ctx, "./make.bash")
	cmd.Dir = filepath.Join(dir, "src")
	env := []string{"GOROOT_BOOTSTRAP=" + b.stock, "GOTOOLCHAIN=local"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOROOT", "GOROOT_BOOTSTRAP", "GOTOOLCHAIN", "GOFLAGS", "GOOS", "GOARCH", "GOEXPERIMENT", "GOWORK", "CGO_ENABLED":
			continue
		}
		env = append(env, kv)
	}
	if b.makeEnv != nil {
		env = b.makeEnv(env)
	}
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			for _, ph := range makePhases {
				if strings.HasPrefix(line, ph) {
					report(ph)
				}
			}
			if tail = append(tail, line); len(tail) > 20 {
				tail = tail[1:]
			}
		}
		io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%w; its last lines:\n%s", err, strings.Join(tail, "\n"))
	}
	return nil
}
