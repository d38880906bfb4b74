package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// etcdBed is an embedded etcd member, a gateway started from a bootstrap
// with tenants_from "etcd" exactly as serve starts it, and the files the
// operator pushes.
type etcdBed struct {
	member       *etcdtest.Member
	prefix, base string
	boot         string // the bootstrap file
	storeBlock   string
	gw           *gateway
	log          *lockedBuffer
}

func newEtcdBed(t *testing.T) *etcdBed {
	t.Helper()
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	b := &etcdBed{member: member, prefix: fmt.Sprintf("cmd-test-%d/", time.Now().UnixNano()), log: &lockedBuffer{}}
	b.storeBlock = fmt.Sprintf(`{"driver": "etcd", "etcd": {"endpoints": [%q], "prefix": %q}}`, member.Endpoint, b.prefix)
	b.boot = writeFile(t, fmt.Sprintf(`{"listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}, "store": %s, "tenants_from": "etcd"}`, b.storeBlock))
	return b
}

// document writes a file of the tenants to push.
func (b *etcdBed) document(t *testing.T, tenantsJSON ...string) string {
	return writeFile(t, fmt.Sprintf(`{"store": %s, "tenants": [%s]}`, b.storeBlock, strings.Join(tenantsJSON, ",")))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tenantsCmd runs "todo-gateway tenants ARGS" and returns its exit code and output.
func tenantsCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"tenants"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func adminStatus(t *testing.T, g *gateway) (config string, revision int64) {
	t.Helper()
	resp := do(t, mustRequest(t, http.MethodGet, "http://"+g.AdminAddr()+"/status", nil))
	var doc struct {
		Config   string `json:"config"`
		Revision int64  `json:"revision"`
	}
	if err := json.Unmarshal([]byte(readAll(t, resp)), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Config, doc.Revision
}

// The whole workflow against a running instance: push, the instance serves
// the new tenant and shows the revision, diff and list, a document that
// does not validate (written by hand) is never applied, status shows the
// instance behind and why, an instance starting then starts on the last
// good one, push refuses what check refuses, a later push converges.
func TestTenantsInEtcd(t *testing.T) {
	iss := providertest.New(t)
	b := newEtcdBed(t)
	ln, base := listen(t)
	b.base = base
	acme, globex := tenantJSON(base, "acme", iss.Issuer()), tenantJSON(base, "globex", iss.Issuer())

	// No document yet: the instance refuses to start, saying what to do.
	empty, err := configSource(b.boot)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tenants.Read(context.Background(), empty); !errors.Is(err, tenants.ErrNoDocument) || !strings.Contains(err.Error(), "tenants push") {
		t.Errorf("start without a document: %v, want ErrNoDocument saying how to push one", err)
	}
	empty.(io.Closer).Close()
	v1 := b.document(t, acme)
	if code, out, errOut := tenantsCmd("diff", "--config", v1); code != exitOK || !strings.Contains(out, "added:     acme") {
		t.Errorf("diff before any push: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := tenantsCmd("push", "--config", v1); code != exitOK || !strings.Contains(out, "pushed revision") {
		t.Fatalf("push: exit %d, %q %q", code, out, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	src, err := configSource(b.boot)
	if err != nil {
		t.Fatal(err)
	}
	es, ok := src.(*tenants.EtcdSource)
	if !ok {
		t.Fatalf("a bootstrap with tenants_from etcd gave source %T, want *tenants.EtcdSource", src)
	}
	cfg, doc, err := tenants.Read(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := startGateway(ctx, cfg, doc.Version(), doc.Revision, slog.New(slog.NewJSONHandler(b.log, nil)), ln)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.watchConfig(ctx, src); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := gw.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		gw.waitAnnounced()
		es.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", b.log.String())
		}
	})
	if v, rev := adminStatus(t, gw); v != doc.Version() || rev != doc.Revision || rev == 0 {
		t.Errorf("/status shows version %s revision %d, want %s revision %d", v, rev, doc.Version(), doc.Revision)
	}
	if code := metadataStatus(t, base, "globex"); code != http.StatusNotFound {
		t.Errorf("globex before it is pushed: %d, want 404", code)
	}

	// Push a second tenant: served without a restart, at the new revision.
	v2 := b.document(t, acme, globex)
	code, out, errOut := tenantsCmd("diff", "--config", v2)
	if code != exitOK || !strings.Contains(out, "added:     globex") || !strings.Contains(out, "unchanged: 1") {
		t.Errorf("diff: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := tenantsCmd("push", "--config", v2); code != exitOK {
		t.Fatalf("push: exit %d, %q %q", code, out, errOut)
	}
	eventually(t, "globex serves after the push", func() bool { return metadataStatus(t, base, "globex") == http.StatusOK })
	good, goodRev := adminStatus(t, gw)
	if goodRev <= doc.Revision || good != tenants.Version(mustRead(t, v2)) {
		t.Errorf("/status after the push: version %s revision %d, want the pushed file's version after revision %d", good, goodRev, doc.Revision)
	}
	if code, out, _ := tenantsCmd("status", "--config", b.boot, "--wait", "10s"); code != exitOK || !strings.Contains(out, "converged: 1 of 1") {
		t.Errorf("status: exit %d, %q", code, out)
	}
	if code, out, _ := tenantsCmd("list", "--config", b.boot); code != exitOK || !strings.Contains(out, base+"/globex") || !strings.Contains(out, "oidc") {
		t.Errorf("list of the bootstrap (the document in etcd): exit %d, %q", code, out)
	}
	if code, out, _ := tenantsCmd("get", "--config", b.boot); code != exitOK || out != string(mustRead(t, v2)) {
		t.Errorf("get: exit %d, %q; want the pushed bytes", code, out)
	}

	// A document written around push that does not validate: refused by
	// the instance, which keeps serving the last good one.
	cli, err := b.member.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, b.prefix+tenants.EtcdDocumentKey, `{"tenants": [{"id": "Not An Id"}]}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the instance refuses the invalid document", func() bool { return strings.Contains(b.log.String(), "reload refused") })
	if v, rev := adminStatus(t, gw); v != good || rev != goodRev {
		t.Errorf("after an invalid document: /status version %s revision %d, want the last good %s at %d", v, rev, good, goodRev)
	}
	if code := metadataStatus(t, base, "globex"); code != http.StatusOK {
		t.Errorf("globex after an invalid document: %d, want still served", code)
	}
	eventually(t, "status names the refusal", func() bool {
		_, out, _ := tenantsCmd("status", "--config", b.boot)
		return strings.Contains(out, "refused revision")
	})
	if code, out, _ := tenantsCmd("status", "--config", b.boot); code != exitFail || !strings.Contains(out, "behind") || !strings.Contains(out, `"Not An Id"`) {
		t.Errorf("status with the instance behind: exit %d, %q; want exit 1, the instance behind, and why", code, out)
	}
	// An instance that starts now starts on the last good document, and
	// says what it refused.
	again, err := configSource(b.boot)
	if err != nil {
		t.Fatal(err)
	}
	_, doc2, refused, err := readAtStart(ctx, again)
	again.(io.Closer).Close()
	if err != nil || doc2.Revision != goodRev || refused == nil || !strings.Contains(refused.Reason, `"Not An Id"`) {
		t.Errorf("a start with the invalid document newest: revision %d, refused %+v, err %v; want revision %d and the refusal", doc2.Revision, refused, err, goodRev)
	}

	// Remove globex: no longer routed, its data stays (the store never
	// deletes); push validates exactly as check does.
	if code, _, errOut := tenantsCmd("push", "--config", b.document(t, acme, strings.Replace(globex, `"oidc"`, `"nope"`, 1))); code != exitFail ||
		!strings.Contains(errOut, `tenants[1] (id "globex").provider.type`) {
		t.Errorf("push of an invalid file: exit %d, stderr %q; want check's problem lines", code, errOut)
	}
	// The document being replaced does not validate: push says so and
	// compares with nothing.
	if code, out, errOut := tenantsCmd("push", "--config", b.document(t, acme)); code != exitOK || !strings.Contains(errOut, "does not validate") {
		t.Fatalf("push: exit %d, %q %q", code, out, errOut)
	}
	eventually(t, "globex removed", func() bool { return metadataStatus(t, base, "globex") == http.StatusNotFound })
	if code, out, _ := tenantsCmd("status", "--config", b.boot, "--wait", "10s"); code != exitOK {
		t.Errorf("status after a good push: exit %d, %q", code, out)
	}
	if _, rev := adminStatus(t, gw); rev <= goodRev {
		t.Errorf("/status revision %d after the last push, want above %d", rev, goodRev)
	}
}

func TestTenantsList(t *testing.T) {
	path := writeFile(t, `{"tenants": [
		{"id": "acme", "resource": "http://localhost:3001/acme", "provider": {"type": "logto", "issuer": "https://acme.logto.app/oidc"}, "audience": {"strategy": "resource"}},
		{"id": "globex", "resource": "http://localhost:3001/globex", "provider": {"type": "oidc", "issuer": "https://login.globex.example/"}, "audience": {"strategy": "audience", "values": ["todo-api"]}},
		{"id": "notes", "resource": "http://localhost:3001/notes", "provider": {"type": "logto", "issuer": "https://acme.logto.app/oidc"},
		 "server": {"type": "upstream", "url": "http://notes.internal:8080/mcp", "permissions": {"tools": {"search": []}}}}]}`)
	code, out, errOut := tenantsCmd("list", "--config", path)
	want := "ID      RESOURCE                     TYPE   ISSUER                         AUDIENCE SERVER\n" +
		"acme    http://localhost:3001/acme   logto  https://acme.logto.app/oidc    resource todo\n" +
		"globex  http://localhost:3001/globex oidc   https://login.globex.example/  audience todo\n" +
		"notes   http://localhost:3001/notes  logto  https://acme.logto.app/oidc    resource upstream http://notes.internal:8080/mcp\n"
	if code != exitOK || strings.Fields(out) == nil || strings.Join(strings.Fields(out), " ") != strings.Join(strings.Fields(want), " ") {
		t.Errorf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"list"}, {"push", "--config", path, "extra"}, {"status", "--config", path, "--wait", "-1s"}} {
		if code, _, _ := tenantsCmd(args...); code != exitUsage {
			t.Errorf("tenants %q: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := tenantsCmd("push", "--config", path); code != exitFail || !strings.Contains(errOut, `not "etcd"`) {
		t.Errorf("push of a file on bbolt: exit %d, %q; want a refusal naming the store", code, errOut)
	}
}
