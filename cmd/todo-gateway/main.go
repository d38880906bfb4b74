// Command todo-gateway hosts many MCP todo servers (tenants) in one process,
// each an OAuth resource server for its own authorization server.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/todo-gateway/todo-gateway/tenants"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes: 0 success, 1 the command failed (for check: the configuration
// is invalid), 2 the command line itself is wrong.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
	usage   func(w io.Writer)
}

// commands is a function, not a variable, so that a subcommand may refer to
// the list (for help) without an initialisation cycle.
func commands() []command {
	return []command{
		{"check", "validate a configuration file and report every problem", runCheck, checkUsage},
		{"providers", "probe every tenant's authorization server and compare them side by side", runProviders, providersUsage},
		{"serve", "run the gateway (default configuration: the embedded example)", runServe, serveUsage},
		{"store", "copy every tenant's todos to another store (store copy); back up a running bbolt store (store backup)", runStore, storeUsage},
		{"tenants", "list tenants; push, get, diff the tenants document in etcd; show which instances serve it", runTenants, tenantsUsage},
		{"token", "explain how a tenant verifies a token (read from stdin)", runToken, tokenUsage},
		{"version", "print the version and VCS revision of this binary", runVersion, versionUsage},
	}
}

func find(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run is the whole program behind main, so tests drive it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		return runHelp(rest, stdout, stderr)
	case "-version", "--version":
		return runVersion(rest, stdout, stderr)
	}
	c, ok := find(name)
	if !ok {
		fmt.Fprintf(stderr, "todo-gateway: unknown command %q\n\n", name)
		usage(stderr)
		return exitUsage
	}
	return c.run(rest, stdout, stderr)
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	c, ok := find(args[0])
	if !ok {
		fmt.Fprintf(stderr, "todo-gateway help: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	c.usage(stdout)
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprint(w, `todo-gateway hosts many MCP todo servers (tenants) in one process; each
tenant is an OAuth resource server for its own authorization server.

Usage:
  todo-gateway <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help       show help for a command

Run "todo-gateway help <command>" for a command's flags.
`)
}

// printFlags lists a command's flags as flag.PrintDefaults does, but with
// the double dash that the usage lines and the README write (the flag
// package accepts both).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		switch def := f.DefValue; {
		case def == "" || def == "0" || def == "false" || def == "0s":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			line += fmt.Sprintf(" (default %q)", def)
		default:
			line += " (default " + def + ")"
		}
		fmt.Fprintln(w, line)
	})
}

// parseFlags parses a subcommand's flags. --help prints the usage on stdout
// and a mistake prints it on stderr (flag alone would send both to one
// writer); done reports that the command must return code now.
func parseFlags(fs *flag.FlagSet, args []string, usage func(io.Writer), stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return exitOK, true
	case err != nil:
		return usageError(stderr, fs.Name(), usage, err.Error()), true
	}
	return exitOK, false
}

// usageError prints a mistake on the command line with the usage, and
// returns the usage exit code.
func usageError(stderr io.Writer, command string, usage func(io.Writer), msg string) int {
	fmt.Fprintf(stderr, "todo-gateway %s: %s\n\n", command, msg)
	usage(stderr)
	return exitUsage
}

// loadFile loads a configuration file exactly as serve does. On failure it
// prints every problem, one per line and prefixed with the file, and
// returns nil.
func loadFile(path string, stderr io.Writer) *tenants.Config {
	cfg, err := tenants.Load(path)
	if err == nil {
		return cfg
	}
	printLoadError(path, err, stderr)
	return nil
}

// printLoadError prints why a configuration file did not load: every
// problem on a line of its own prefixed with the file.
func printLoadError(path string, err error, stderr io.Writer) {
	var ve *tenants.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintf(stderr, "%s: %s\n", path, p)
		}
	} else {
		fmt.Fprintln(stderr, err) // already names the file
	}
}

// tenantIDList names a configuration's tenants, for messages about an
// unknown --tenant.
func tenantIDList(cfg *tenants.Config) string {
	ids := make([]string, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}
