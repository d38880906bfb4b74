package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/todo-gateway/todo-gateway/store/bolt"
)

func storeBackupFlags() (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("store backup", flag.ContinueOnError)
	admin := fs.String("admin", "127.0.0.1:3100", "the running gateway's admin `address` (admin.listen: host:port, or an http:// URL)")
	to := fs.String("to", "", "the `file` the copy is written to; it must not exist yet")
	return fs, admin, to
}

func storeBackupUsage(w io.Writer) {
	fs, _, _ := storeBackupFlags()
	fmt.Fprint(w, `Usage: todo-gateway store backup [--admin ADDR] --to FILE

Store backup takes a consistent copy of a running gateway's bbolt file
through its admin endpoint /backup (one read transaction: writes go on
while it is copied, and the copy holds every todo acknowledged before it
began). The copy is written next to FILE, checked (complete, every page
consistent, todos counted per tenant) and only then given the name FILE.

Restore: stop the gateway, put the copy at store.bbolt.path, start it.
An etcd store is backed up with etcdctl snapshot save instead (/backup
answers 501 there).

Exit status: 0 written and checked, 1 failed (nothing is left at FILE),
2 usage error.

Flags:
`)
	printFlags(w, fs)
}

func storeBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, admin, to := storeBackupFlags()
	if code, done := parseFlags(fs, args, storeBackupUsage, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, "store backup", storeBackupUsage, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *to == "":
		return usageError(stderr, "store backup", storeBackupUsage, "--to FILE is required")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "todo-gateway store backup: "+format+"\n", a...)
		return exitFail
	}
	if _, err := os.Lstat(*to); err == nil {
		return fail("%s exists; a backup never overwrites a file", *to)
	}
	url := strings.TrimSuffix(*admin, "/")
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	url += "/backup"

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail("--admin %q: %v", *admin, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Description string `json:"error_description"`
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(body, &e) != nil || e.Description == "" {
			e.Description = strings.TrimSpace(string(body))
		}
		return fail("%s answered %s: %s", url, resp.Status, e.Description)
	}

	tmp, err := os.CreateTemp(filepath.Dir(*to), "."+filepath.Base(*to)+".partial-*")
	if err != nil {
		return fail("%v", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("the copy was cut off: %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Sync() // on disk before it is called a backup
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("%v", err)
	}
	todos, err := bolt.Verify(tmp.Name())
	if err != nil {
		return fail("the copy does not check: %v", err)
	}
	// A hard link gives the name only if nothing took it meanwhile.
	if err := os.Link(tmp.Name(), *to); err != nil {
		return fail("%v", err)
	}

	ids := make([]string, 0, len(todos))
	total := 0
	for id, c := range todos {
		ids = append(ids, id)
		total += c
	}
	sort.Strings(ids)
	fmt.Fprintf(stdout, "%s: %d bytes, %d todos of %d tenants, checked\n", *to, n, total, len(ids))
	for _, id := range ids {
		fmt.Fprintf(stdout, "  %-20s %d\n", id, todos[id])
	}
	return exitOK
}
