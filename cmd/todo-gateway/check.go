package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/todo-gateway/todo-gateway/tenants"
)

func checkFlags() (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	config := fs.String("config", "", "the configuration `file` (JSON) to check")
	return fs, config
}

func checkUsage(w io.Writer) {
	fs, _ := checkFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway check --config FILE

Check loads the configuration exactly as the gateway would and reports every
problem, one per line, each with its JSON path. It does not contact any
authorization server and does not need the secrets to be present.

Prints "ok: N tenants" and exits 0 when the file is valid, exits 1 when it
is not, and 2 on a usage error.

Flags:
`)
	printFlags(w, fs)
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs, config := checkFlags()
	if code, done := parseFlags(fs, args, checkUsage, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return checkUsageError(stderr, fmt.Sprintf("unexpected argument %q (the file is given with --config FILE)", fs.Arg(0)))
	}
	if *config == "" {
		return checkUsageError(stderr, "--config FILE is required")
	}

	cfg := loadFile(*config, stderr)
	if cfg == nil {
		return exitFail
	}
	if cfg.TenantsFrom == tenants.TenantsFromEtcd {
		fmt.Fprintf(stdout, "ok: a bootstrap; the tenants come from etcd (\"todo-gateway tenants list --config %s\" lists them)\n", *config)
		return exitOK
	}
	noun := "tenants"
	if len(cfg.Tenants) == 1 {
		noun = "tenant"
	}
	fmt.Fprintf(stdout, "ok: %d %s\n", len(cfg.Tenants), noun)
	return exitOK
}

func checkUsageError(stderr io.Writer, msg string) int {
	return usageError(stderr, "check", checkUsage, msg)
}
