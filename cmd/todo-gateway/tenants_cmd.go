package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/todo-gateway/todo-gateway/tenants"
)

// tenantsSub is one "tenants" subcommand.
type tenantsSub struct {
	name, args, summary string
	wait                bool // takes --wait
	run                 func(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int
}

type tenantsOptions struct {
	config string
	wait   time.Duration
}

func tenantsSubs() []tenantsSub {
	return []tenantsSub{
		{"list", "--config FILE", "list the tenants: id, resource, provider type, issuer, audience strategy", false, runTenantsList},
		{"push", "--config FILE", "validate FILE as check does and write it as the tenants document in etcd", false, runTenantsPush},
		{"get", "--config FILE", "print the tenants document in etcd (its revision and version on stderr)", false, runTenantsGet},
		{"diff", "--config FILE", "show which tenants pushing FILE would add, change and remove", false, runTenantsDiff},
		{"status", "--config FILE [--wait DURATION]", "show which instances serve which revision of the document", true, runTenantsStatus},
	}
}

func tenantsFlags(sub tenantsSub) (*flag.FlagSet, *tenantsOptions) {
	fs := flag.NewFlagSet("tenants "+sub.name, flag.ContinueOnError)
	o := &tenantsOptions{}
	fs.StringVar(&o.config, "config", "", "a configuration `file` (JSON) whose store.etcd block names the cluster; for push, diff and list, the file with the tenants")
	if sub.wait {
		fs.DurationVar(&o.wait, "wait", 0, "wait up to this `duration` until every instance serves the document")
	}
	return fs, o
}

func tenantsUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: todo-gateway tenants <list|push|get|diff|status> --config FILE

Tenants manages the tenants document that a cluster of gateways reads from
etcd. Each instance runs "serve --config BOOTSTRAP", where BOOTSTRAP is a
configuration file with its own listen, admin, store ("driver": "etcd"),
http and shutdown settings, "tenants_from": "etcd" and no tenants. It reads
the document under <store.etcd.prefix>config/tenants at start, watches it,
and applies every new revision as a file reload is applied (a document that
does not validate is never applied); only the document's "tenants" are
used. Without a document an instance does not start.

`)
	for _, sub := range tenantsSubs() {
		fmt.Fprintf(w, "  tenants %-6s %-30s %s\n", sub.name, sub.args, sub.summary)
	}
	fmt.Fprint(w, `
push validates FILE exactly as "check" does, and refuses a document above
1.5 MiB, etcd's request limit (about 1,500 tenants). It writes only if the
document is still at the revision it read, so of two operators pushing at
once the second gets a conflict error instead of overwriting the first;
diff, then push again. FILE's store.etcd block says where to push; FILE's
other settings are not used by the instances.

get, diff and status connect with the store.etcd block of FILE, which may
be a bootstrap or a file with tenants. list prints FILE's tenants, or, for
a bootstrap, those of the document in etcd.

status lists the instances running now: each records the revision and
version (SHA-256 of the document) it serves under a lease in etcd, which
ends within 10s of a crash. It exits 0 when every instance serves the
current document, 1 when one does not (or none runs), after waiting up to
--wait for them to converge.

Flags:
  --config FILE      the configuration file (required)
  --wait DURATION    status only: wait this long for convergence (default 0)
`)
}

func runTenants(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "tenants", tenantsUsage, "a subcommand is required: list, push, get, diff or status")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		tenantsUsage(stdout)
		return exitOK
	}
	i := slices.IndexFunc(tenantsSubs(), func(s tenantsSub) bool { return s.name == args[0] })
	if i < 0 {
		return usageError(stderr, "tenants", tenantsUsage, fmt.Sprintf("unknown subcommand %q (list, push, get, diff, status)", args[0]))
	}
	sub := tenantsSubs()[i]
	fs, o := tenantsFlags(sub)
	if code, done := parseFlags(fs, args[1:], tenantsUsage, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, "tenants "+sub.name, tenantsUsage, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case o.config == "":
		return usageError(stderr, "tenants "+sub.name, tenantsUsage, "--config FILE is required")
	case o.wait < 0:
		return usageError(stderr, "tenants "+sub.name, tenantsUsage, "--wait must not be negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return sub.run(ctx, o, stdout, stderr)
}

// loadDocument reads a configuration file once and parses those bytes as a
// document for etcd: what "check" accepts, listing its own tenants. It
// prints what is wrong and returns nil on failure.
func loadDocument(path string, stderr io.Writer) ([]byte, *tenants.Config) {
	data, err := tenants.ReadFile(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, nil
	}
	cfg, err := tenants.ParseDocument(data)
	if err != nil {
		printLoadError(path, fmt.Errorf("%s: %w", path, err), stderr)
		return nil, nil
	}
	return data, cfg
}

// openDocumentSource connects to the etcd cluster of cfg's store block.
// openConfiguredSource opens the etcd document source that the file at
// path names (its store block), or prints why not and returns nil.
func openConfiguredSource(path string, stderr io.Writer) *tenants.EtcdSource {
	cfg := loadFile(path, stderr)
	if cfg == nil {
		return nil
	}
	return openDocumentSource(path, cfg, stderr)
}

func openDocumentSource(path string, cfg *tenants.Config, stderr io.Writer) *tenants.EtcdSource {
	src, err := tenants.OpenEtcdSource(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return nil
	}
	return src
}

// current reads the document in etcd and parses it; a document absent is
// not an error (doc.Revision 0, cfg nil), one that does not parse leaves
// cfg nil and says so on stderr.
func current(ctx context.Context, src *tenants.EtcdSource, stderr io.Writer) (tenants.Document, *tenants.Config, error) {
	doc, err := src.Read(ctx)
	if errors.Is(err, tenants.ErrNoDocument) {
		return tenants.Document{}, nil, nil
	}
	if err != nil {
		return doc, nil, err
	}
	cfg, err := tenants.ParseDocument(doc.Data)
	if err != nil {
		fmt.Fprintf(stderr, "the document in etcd (revision %d) does not validate, so no instance applies it: %v\n", doc.Revision, err)
	}
	return doc, cfg, nil
}

// against is what push and diff start from: the file's document, validated
// as check does, and the document etcd holds now (a zero Document when
// none). ok is false once the problem has been printed.
type against struct {
	data         []byte
	cfg, prevCfg *tenants.Config
	src          *tenants.EtcdSource
	prev         tenants.Document
}

func readAgainst(ctx context.Context, path string, stderr io.Writer) (a against, ok bool) {
	if a.data, a.cfg = loadDocument(path, stderr); a.cfg == nil {
		return a, false
	}
	if a.src = openDocumentSource(path, a.cfg, stderr); a.src == nil {
		return a, false
	}
	var err error
	if a.prev, a.prevCfg, err = current(ctx, a.src, stderr); err != nil {
		a.src.Close()
		fmt.Fprintln(stderr, err)
		return a, false
	}
	return a, true
}

func runTenantsPush(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int {
	a, ok := readAgainst(ctx, o.config, stderr)
	if !ok {
		return exitFail
	}
	defer a.src.Close()
	data, cfg, src, prev, prevCfg := a.data, a.cfg, a.src, a.prev, a.prevCfg
	if prev.Revision != 0 && prev.Version() == tenants.Version(data) {
		fmt.Fprintf(stdout, "unchanged: revision %d already holds this document (version %s)\n", prev.Revision, short(prev.Version()))
		return exitOK
	}
	rev, err := src.Push(ctx, data, prev.Revision)
	if err != nil {
		fmt.Fprintf(stderr, "%s: push refused: %v\n", o.config, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "pushed revision %d (version %s, %d tenants) to %s\n", rev, short(tenants.Version(data)), len(cfg.Tenants), src)
	printChanges(stdout, tenants.Changes(prevCfg, cfg))
	fmt.Fprintf(stdout, "\"todo-gateway tenants status --config %s\" shows which instances serve it.\n", o.config)
	return exitOK
}

func runTenantsGet(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int {
	src := openConfiguredSource(o.config, stderr)
	if src == nil {
		return exitFail
	}
	defer src.Close()
	doc, err := src.Read(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	stdout.Write(doc.Data)
	fmt.Fprintf(stderr, "revision %d, version %s, %s\n", doc.Revision, short(doc.Version()), src)
	return exitOK
}

func runTenantsDiff(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int {
	a, ok := readAgainst(ctx, o.config, stderr)
	if !ok {
		return exitFail
	}
	defer a.src.Close()
	data, cfg, prev, prevCfg := a.data, a.cfg, a.prev, a.prevCfg
	switch {
	case prev.Revision == 0:
		fmt.Fprintf(stdout, "etcd holds no document yet: pushing %s adds every tenant\n", o.config)
	case prev.Version() == tenants.Version(data):
		fmt.Fprintf(stdout, "%s is the document at revision %d (version %s)\n", o.config, prev.Revision, short(prev.Version()))
	default:
		fmt.Fprintf(stdout, "%s against revision %d (version %s):\n", o.config, prev.Revision, short(prev.Version()))
	}
	printChanges(stdout, tenants.Changes(prevCfg, cfg))
	return exitOK
}

func printChanges(w io.Writer, ch tenants.TenantChanges) {
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "-"
		}
		return strings.Join(ids, ", ")
	}
	fmt.Fprintf(w, "  added:     %s\n  changed:   %s\n  removed:   %s (their todos stay in the store)\n  unchanged: %d\n",
		list(ch.Added), list(ch.Changed), list(ch.Removed), ch.Unchanged)
}

// statusPoll is how often status --wait looks again.
const statusPoll = 250 * time.Millisecond

func runTenantsStatus(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int {
	src := openConfiguredSource(o.config, stderr)
	if src == nil {
		return exitFail
	}
	defer src.Close()
	deadline := time.Now().Add(o.wait)
	for {
		doc, err := src.Read(ctx)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		applied, err := src.Applied(ctx)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		behind := 0
		for _, a := range applied {
			if a.Version != doc.Version() {
				behind++
			}
		}
		converged := len(applied) > 0 && behind == 0
		if !converged && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return exitFail
			case <-time.After(statusPoll):
				continue
			}
		}
		printStatus(stdout, doc, applied)
		if !converged {
			return exitFail
		}
		return exitOK
	}
}

func printStatus(w io.Writer, doc tenants.Document, applied []tenants.Applied) {
	fmt.Fprintf(w, "document: revision %d, version %s\n", doc.Revision, short(doc.Version()))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADMIN\tREVISION\tVERSION\tAPPLIED\tSTATE")
	current := 0
	for _, a := range applied {
		state := "current"
		if a.Version != doc.Version() {
			state = "behind"
		} else {
			current++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", a.Instance, a.Admin, a.Revision, short(a.Version), a.AppliedAt.Format(time.RFC3339), state)
	}
	tw.Flush()
	for _, a := range applied {
		if a.Refused != nil {
			fmt.Fprintf(w, "%s refused revision %d: %s\n", a.Instance, a.Refused.Revision, a.Refused.Reason)
		}
	}
	switch {
	case len(applied) == 0:
		fmt.Fprintln(w, "no instance is running on this document's prefix")
	case current == len(applied):
		fmt.Fprintf(w, "converged: %d of %d instances serve revision %d\n", current, len(applied), doc.Revision)
	default:
		fmt.Fprintf(w, "not converged: %d of %d instances serve revision %d (an instance keeps the last document it could apply; a refusal is named above, and in its log)\n",
			current, len(applied), doc.Revision)
	}
}

func runTenantsList(ctx context.Context, o *tenantsOptions, stdout, stderr io.Writer) int {
	cfg := loadFile(o.config, stderr)
	if cfg == nil {
		return exitFail
	}
	if cfg.TenantsFrom == tenants.TenantsFromEtcd {
		src := openDocumentSource(o.config, cfg, stderr)
		if src == nil {
			return exitFail
		}
		defer src.Close()
		var doc tenants.Document
		var err error
		cfg, doc, err = tenants.Read(ctx, src)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFail
		}
		fmt.Fprintf(stderr, "tenants of revision %d (version %s) in %s\n", doc.Revision, short(doc.Version()), src)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRESOURCE\tTYPE\tISSUER\tAUDIENCE\tSERVER")
	for _, t := range cfg.Tenants {
		server := t.Server.TypeOf()
		if t.Server.IsUpstream() {
			server += " " + t.Server.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Resource, t.Provider.Type, t.Provider.Issuer, t.Audience.Strategy, server)
	}
	tw.Flush()
	return exitOK
}

// short abbreviates a version for tables; /status has it whole.
func short(version string) string { return version[:min(12, len(version))] }
