package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/bolt"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// progressEvery is how many pages of one tenant pass between progress
// lines: a line per 10,000 todos says the copy is alive without flooding.
const progressEvery = 10

func storeCopyFlags() (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("store copy", flag.ContinueOnError)
	from := fs.String("from", "", "the configuration `file` (JSON) whose store is copied")
	to := fs.String("to", "", "the configuration `file` (JSON) whose store receives the copy")
	return fs, from, to
}

func storeUsage(w io.Writer) {
	fs, _, _ := storeCopyFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway store copy --from FILE --to FILE
       todo-gateway store backup [--admin ADDR] --to FILE   (see store backup --help)

Store copy copies the todos of every tenant from the store the --from
configuration names (its "store" block) to the store the --to configuration
names, keeping their ids, owners and creation times: to move from a bbolt
file to etcd, or back. Every tenant the source store holds is copied, also
one no longer in the --from configuration (removing a tenant from the
configuration never deletes its data). Both files are loaded as serve loads
them; only their "store" blocks are used.

The copy is idempotent: a todo the destination already has is skipped, so a
second run copies nothing and an interrupted copy (Ctrl-C, a lost
connection) is resumed by running the same command again. A todo id that
the destination holds with a different todo stops the copy; nothing is
overwritten.

Stop the gateway first. A bbolt file a running gateway holds is refused,
and todos written to an etcd source during the copy may be left behind.

It ends with the number of todos per tenant in both stores. Exit status: 0
they agree, 1 the copy failed or a count differs (the destination held other
todos of that tenant, or the source changed meanwhile), 2 usage error (also
when both files name the same store).

Flags:
`)
	printFlags(w, fs)
}

// runStore dispatches the store subcommands: copy and backup.
func runStore(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "store", storeUsage, "a subcommand is required: copy or backup")
	}
	switch args[0] {
	case "backup":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return storeBackup(ctx, args[1:], stdout, stderr)
	case "copy":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// The first signal stops the copy after the page in progress; from
		// then on the default handling is back, so a second one ends the
		// process at once (say while etcd retries a write for 15s).
		context.AfterFunc(ctx, stop)
		return storeCopy(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help":
		storeUsage(stdout)
		return exitOK
	}
	return usageError(stderr, "store", storeUsage, fmt.Sprintf("unknown subcommand %q (known: copy, backup)", args[0]))
}

// storeCopy is "store copy" with its context given. When ctx ends the copy
// stops between pages (bbolt imports a page in one transaction) or between
// the transactions of one (etcd); what was imported stays, and a second run
// resumes.
func storeCopy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, fromPath, toPath := storeCopyFlags()
	if code, done := parseFlags(fs, args, storeUsage, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, "store copy", storeUsage, fmt.Sprintf("unexpected argument %q (the files are given with --from and --to)", fs.Arg(0)))
	case *fromPath == "" || *toPath == "":
		return usageError(stderr, "store copy", storeUsage, "--from FILE and --to FILE are both required")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "todo-gateway store copy: "+format+"\n", a...)
		return exitFail
	}

	fromCfg, toCfg := loadFile(*fromPath, stderr), loadFile(*toPath, stderr)
	if fromCfg == nil || toCfg == nil {
		return exitFail
	}
	if what, same := sameStore(fromCfg.Store, toCfg.Store); same {
		fmt.Fprintf(stderr, "todo-gateway store copy: --from and --to name the same store (%s); a copy onto itself would change nothing\n", what)
		return exitUsage
	}
	if b := fromCfg.Store.Bolt; fromCfg.Store.Driver == tenants.DriverBolt {
		// openStore would create an empty file, and the copy would
		// "succeed" with nothing: a wrong path must say so.
		if _, err := os.Stat(b.Path); err != nil {
			return fail("--from: no bbolt file to copy at %s (store.bbolt.path of %s): %v", b.Path, *fromPath, err)
		}
	}

	if fromCfg.Store.Driver == tenants.DriverBolt {
		fromCfg.Store.Bolt.ReadOnly = true // a copy never writes to its source
	}
	from, err := openSide(ctx, "--from", fromCfg.Store)
	if err != nil {
		return fail("%v", err)
	}
	defer closeSide(from, stderr)
	to, err := openSide(ctx, "--to", toCfg.Store)
	if err != nil {
		return fail("%v", err)
	}
	defer closeSide(to, stderr)
	fmt.Fprintf(stdout, "from %s\nto   %s\n", from.description, to.description)

	configured := make(map[string]bool, len(fromCfg.Tenants))
	for _, t := range fromCfg.Tenants {
		configured[t.ID] = true
	}
	ids, err := copyTodos(ctx, from, to, configured, stdout)
	if err != nil {
		if ctx.Err() != nil {
			return fail("interrupted: %v\nwhat was copied stays; run the same command again to copy the rest", err)
		}
		return fail("%v", err)
	}
	agree, err := compareCounts(ctx, from, to, ids, stdout)
	switch {
	case err != nil:
		return fail("counting: %v", err)
	case !agree:
		return fail("the stores differ in the tenants marked; see above")
	}
	return exitOK
}

// openSide opens the store of one configuration and checks that it answers,
// so that an unreachable store is named before anything is copied.
func openSide(ctx context.Context, flagName string, cfg tenants.StoreConfig) (backend, error) {
	b, err := openStore(cfg, slog.New(slog.DiscardHandler), storeHooks{})
	if errors.Is(err, bolt.ErrLocked) {
		return backend{}, fmt.Errorf("%s: %s is held by a running todo-gateway (or another process): stop it first, then run the copy again", flagName, cfg.Bolt.Path)
	}
	if err != nil {
		return backend{}, fmt.Errorf("%s: %w", flagName, err)
	}
	if err := b.ready(ctx); err != nil {
		b.Close()
		return backend{}, fmt.Errorf("%s: %s does not answer: %w", flagName, b.description, err)
	}
	return b, nil
}

func closeSide(b backend, stderr io.Writer) {
	if err := b.Close(); err != nil {
		fmt.Fprintf(stderr, "todo-gateway store copy: closing %s: %v\n", b.description, err)
	}
}

// sameStore reports whether two store blocks name the same store, and
// which. Paths are compared absolute, and as files when both exist (a
// symlink or a hard link is the same file); etcd stores are the same when
// their prefixes are and they share an endpoint (two lists of one
// cluster's members need not be equal).
func sameStore(a, b tenants.StoreConfig) (string, bool) {
	switch {
	case a.Driver != b.Driver:
		return "", false
	case a.Driver == tenants.DriverBolt:
		pa, errA := filepath.Abs(a.Bolt.Path)
		pb, errB := filepath.Abs(b.Bolt.Path)
		if errA == nil && errB == nil && pa == pb {
			return "bbolt " + pa, true
		}
		fa, errA := os.Stat(a.Bolt.Path)
		fb, errB := os.Stat(b.Bolt.Path)
		if errA == nil && errB == nil && os.SameFile(fa, fb) {
			return "bbolt " + pa, true
		}
	case a.Driver == tenants.DriverEtcd && a.Etcd.Prefix == b.Etcd.Prefix:
		for _, ea := range a.Etcd.Endpoints {
			for _, eb := range b.Etcd.Endpoints {
				if endpointKey(ea) == endpointKey(eb) {
					return fmt.Sprintf("etcd %s prefix %q", ea, a.Etcd.Prefix), true
				}
			}
		}
	}
	return "", false
}

// endpointKey is an endpoint without what does not change where it leads:
// the case of its scheme and host, a trailing "/".
func endpointKey(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// copyTodos copies every tenant of from into to and returns the tenants.
// A tenant's space is made in to first, so that an empty tenant is copied
// too. Each page is read from from and imported whole into to; Import
// skips what to has already, which is what makes a second run a no-op and
// an interrupted one resumable. ctx is checked between pages.
func copyTodos(ctx context.Context, from, to store.Store, configured map[string]bool, out io.Writer) ([]string, error) {
	ids, err := from.Tenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the source's tenants: %w", err)
	}
	if len(ids) == 0 {
		fmt.Fprintln(out, "the source holds no tenants: nothing to copy")
		return nil, nil
	}
	if err := to.EnsureTenants(ctx, ids...); err != nil {
		return nil, fmt.Errorf("creating the tenants in the destination: %w", err)
	}
	for _, tenant := range ids {
		note := ""
		if !configured[tenant] {
			note = " (not in the --from configuration)"
		}
		read, added, err := copyTenant(ctx, from, to, tenant, out)
		if err != nil {
			// What was read past the last page imported is unknown to be
			// there or not: no "already there" count.
			fmt.Fprintf(out, "%s%s: stopped after %d todos copied\n", tenant, note, added)
			return nil, fmt.Errorf("tenant %q: %w", tenant, err)
		}
		fmt.Fprintf(out, "%s%s: %d todos read, %d copied, %d already there\n", tenant, note, read, added, read-added)
	}
	return ids, nil
}

// copyTenant copies one tenant, page by page, and says how many todos it
// read and how many the destination did not have.
func copyTenant(ctx context.Context, from, to store.Store, tenant string, out io.Writer) (read, added int, err error) {
	pages := 0
	err = eachPage(ctx, from, tenant, func(todos []store.Todo) error {
		n, err := to.Import(ctx, tenant, todos)
		read, added, pages = read+len(todos), added+n, pages+1
		if err != nil {
			return fmt.Errorf("writing the destination: %w", err)
		}
		if pages%progressEvery == 0 {
			fmt.Fprintf(out, "%s: %d todos read so far\n", tenant, read)
		}
		return nil
	})
	return read, added, err
}

// compareCounts prints the todos of each tenant in both stores, counted
// anew, and reports whether every count agrees.
func compareCounts(ctx context.Context, from, to store.Store, ids []string, out io.Writer) (bool, error) {
	type row struct {
		tenant   string
		src, dst int
	}
	rows := make([]row, len(ids))
	width, agree, total := len("tenant"), true, 0
	for i, tenant := range ids {
		src, err := count(ctx, from, tenant)
		if err != nil {
			return false, fmt.Errorf("source, tenant %q: %w", tenant, err)
		}
		dst, err := count(ctx, to, tenant)
		if err != nil {
			return false, fmt.Errorf("destination, tenant %q: %w", tenant, err)
		}
		rows[i] = row{tenant, src, dst}
		width, agree, total = max(width, utf8.RuneCountInString(tenant)), agree && src == dst, total+src
	}
	fmt.Fprintf(out, "\n%-*s  %8s  %11s\n", width, "tenant", "source", "destination")
	for _, r := range rows {
		mark := ""
		if r.src != r.dst {
			mark = "  differs"
		}
		fmt.Fprintf(out, "%-*s  %8d  %11d%s\n", width, r.tenant, r.src, r.dst, mark)
	}
	if agree {
		fmt.Fprintf(out, "ok: %d todos in %d tenants, the same number in both stores\n", total, len(ids))
	}
	return agree, nil
}

// count pages through a tenant's todos; the Store has no cheaper count.
func count(ctx context.Context, s store.Store, tenant string) (int, error) {
	n := 0
	err := eachPage(ctx, s, tenant, func(todos []store.Todo) error {
		n += len(todos)
		return nil
	})
	return n, err
}

// eachPage calls fn with each page of a tenant's todos, oldest first,
// store.MaxLimit at a time, until fn fails or ctx ends (checked between
// pages, so that an interruption leaves whole pages behind).
func eachPage(ctx context.Context, s store.Store, tenant string, fn func([]store.Todo) error) error {
	opts := store.ListOptions{Limit: store.MaxLimit}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := s.List(ctx, tenant, opts)
		if err != nil {
			return fmt.Errorf("reading the todos: %w", err)
		}
		if err := fn(page.Todos); err != nil {
			return err
		}
		if page.NextCursor == "" {
			return nil
		}
		opts.Cursor = page.NextCursor
	}
}
