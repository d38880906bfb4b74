package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// reloadBed is a gateway started from a file that the test rewrites.
type reloadBed struct {
	path, base, db string
	gw             *gateway
	log            *lockedBuffer
	// configMap lays the file out as a Kubernetes ConfigMap volume does
	// (see write).
	configMap bool
	updates   int
}

// tenantJSON is one path tenant on issuer with the resource strategy.
func tenantJSON(base, id, issuer string) string {
	return fmt.Sprintf(`{"id": %q, "resource": "%s/%s", "provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"}}`,
		id, base, id, issuer)
}

// write replaces the configuration and returns the bytes written.
func (rb *reloadBed) write(t *testing.T, tenantsJSON ...string) []byte {
	t.Helper()
	doc := []byte(fmt.Sprintf(`{"listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}, "store": {"bbolt": {"path": %q}}, "tenants": [%s]}`, rb.db, strings.Join(tenantsJSON, ",")))
	if rb.configMap {
		rb.writeConfigMap(t, doc)
		return doc
	}
	// Write then rename, as editors and configuration managers do.
	tmp := rb.path + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, rb.path); err != nil {
		t.Fatal(err)
	}
	return doc
}

// writeConfigMap updates the file as the kubelet updates a ConfigMap
// volume: the data goes into a new timestamped directory, the "..data"
// symlink is swapped to it atomically (a new link renamed over the old) and
// the old directory is removed. The file itself is a symlink through
// "..data" that never changes, so no event ever names it.
func (rb *reloadBed) writeConfigMap(t *testing.T, doc []byte) {
	t.Helper()
	dir := filepath.Dir(rb.path)
	rb.updates++
	stamp := fmt.Sprintf("..2026_12_03_08_00_%02d.000000001", rb.updates)
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stamp, "tenants.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old == "" {
		if err := os.Symlink(filepath.Join("..data", "tenants.json"), rb.path); err != nil {
			t.Fatal(err)
		}
	} else if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
		t.Fatal(err)
	}
}

func newReloadBed(t *testing.T, configMap bool, tenantsJSON func(base string) []string) *reloadBed {
	t.Helper()
	dir := t.TempDir()
	ln, base := listen(t)
	rb := &reloadBed{path: filepath.Join(dir, "tenants.json"), base: base, db: filepath.Join(t.TempDir(), "todos.db"), log: &lockedBuffer{}, configMap: configMap}
	rb.write(t, tenantsJSON(base)...)
	src := tenants.FileSource{Path: rb.path}
	ctx, cancel := context.WithCancel(context.Background())
	cfg, doc, err := tenants.Read(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := startGateway(ctx, cfg, doc.Version(), doc.Revision, slog.New(slog.NewJSONHandler(rb.log, nil)), ln)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.watchConfig(ctx, src); err != nil {
		t.Fatal(err)
	}
	rb.gw = gw
	t.Cleanup(func() {
		cancel()
		if err := gw.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", rb.log.String())
		}
	})
	return rb
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func metadataStatus(t *testing.T, base, id string) int {
	resp := do(t, mustRequest(t, http.MethodGet, base+"/.well-known/oauth-protected-resource/"+id, nil))
	readAll(t, resp)
	return resp.StatusCode
}

func status(t *testing.T, url, token, body string) int {
	resp := post(t, url, token, body, nil)
	readAll(t, resp)
	return resp.StatusCode
}

// Tenants are added, changed and removed while clients hammer an unchanged
// tenant: not one of its requests fails, its caches survive, a removed
// tenant's todos are there again when it comes back, and a broken file
// changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	steady, first, second, newcoIss := providertest.New(t), providertest.New(t), providertest.New(t), providertest.New(t)
	rb := newReloadBed(t, false, func(base string) []string {
		return []string{tenantJSON(base, "steady", steady.Issuer()), tenantJSON(base, "moving", first.Issuer())}
	})
	base := rb.base
	steadyTok := steady.Mint(steady.Claims("u", base+"/steady", allTodoScopes))
	movingTok := first.Mint(first.Claims("u", base+"/moving", allTodoScopes))

	// A todo in "moving", to find again after it is removed and re-added.
	if code := status(t, base+"/moving", movingTok, toolCall("create-todo")); code != http.StatusOK {
		t.Fatalf("create in moving: %d", code)
	}
	if code := status(t, base+"/steady", steadyTok, toolsList); code != http.StatusOK {
		t.Fatalf("steady warm-up: %d", code)
	}
	jwksBefore := steady.Hits(providertest.JWKS) + steady.MetadataHits()

	var stop atomic.Bool
	var total, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`
				resp, err := httpClient.Do(jsonRequest(base+"/steady", steadyTok, body))
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				readAll(t, resp)
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}

	// Add a tenant: it serves without a restart.
	rb.write(t, tenantJSON(base, "steady", steady.Issuer()), tenantJSON(base, "moving", first.Issuer()), tenantJSON(base, "newco", newcoIss.Issuer()))
	eventually(t, "newco serves", func() bool { return metadataStatus(t, base, "newco") == http.StatusOK })
	newcoTok := newcoIss.Mint(newcoIss.Claims("u", base+"/newco", allTodoScopes))
	if code := status(t, base+"/newco", newcoTok, toolsList); code != http.StatusOK {
		t.Errorf("new tenant with its token: %d", code)
	}

	// Change a tenant's issuer: the old issuer's tokens stop working, the
	// new one's start.
	rb.write(t, tenantJSON(base, "steady", steady.Issuer()), tenantJSON(base, "moving", second.Issuer()), tenantJSON(base, "newco", newcoIss.Issuer()))
	secondTok := second.Mint(second.Claims("u", base+"/moving", allTodoScopes))
	eventually(t, "moving trusts the second issuer", func() bool { return status(t, base+"/moving", secondTok, toolsList) == http.StatusOK })
	if code := status(t, base+"/moving", movingTok, toolsList); code != http.StatusUnauthorized {
		t.Errorf("token of the replaced issuer: %d, want 401", code)
	}

	// A broken file is refused; everything keeps serving as it was.
	if err := os.WriteFile(rb.path, []byte(`{"tenants": [{"id": "Bad Id"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refusal is logged", func() bool { return strings.Contains(rb.log.String(), "reload refused") })
	if code := metadataStatus(t, base, "newco"); code != http.StatusOK {
		t.Errorf("after a broken file, newco: %d", code)
	}

	// Remove "moving" with SIGHUP rather than the watcher: 404, data kept.
	rb.write(t, tenantJSON(base, "steady", steady.Issuer()), tenantJSON(base, "newco", newcoIss.Issuer()))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "moving is gone", func() bool { return metadataStatus(t, base, "moving") == http.StatusNotFound })
	if code := status(t, base+"/moving", secondTok, toolsList); code != http.StatusNotFound {
		t.Errorf("removed tenant: %d, want 404", code)
	}
	rb.write(t, tenantJSON(base, "steady", steady.Issuer()), tenantJSON(base, "moving", second.Issuer()))
	eventually(t, "moving is back", func() bool { return metadataStatus(t, base, "moving") == http.StatusOK })
	resp := post(t, base+"/moving", secondTok, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`, nil)
	if body := readAll(t, resp); !strings.Contains(body, `\"content\":\"x\"`) {
		t.Errorf("re-added tenant lost its todo: %s", body)
	}

	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || total.Load() < 50 {
		t.Errorf("steady tenant under reloads: %d of %d requests failed (want 0 of at least 50)", failed.Load(), total.Load())
	}
	if after := steady.Hits(providertest.JWKS) + steady.MetadataHits(); after != jwksBefore {
		t.Errorf("the unchanged tenant refetched metadata or keys (%d → %d): its caches were dropped", jwksBefore, after)
	}
}

// A ConfigMap update, which swaps the "..data" symlink and never touches an
// event named after the file, is applied; an unrelated change in the
// directory is not. /status and the config metric show the version served.
func TestReloadFromConfigMap(t *testing.T) {
	iss := providertest.New(t)
	rb := newReloadBed(t, true, func(base string) []string { return []string{tenantJSON(base, "first", iss.Issuer())} })
	admin := "http://" + rb.gw.AdminAddr()
	configVersion := func() string {
		_, body := get(t, admin+"/status")
		var doc struct{ Config string }
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("status: %v: %s", err, body)
		}
		return doc.Config
	}
	started := configVersion()
	if len(started) != 64 {
		t.Fatalf("status shows config version %q, want the SHA-256 of the file", started)
	}

	// Another file appearing in the directory: read, same bytes, nothing applied.
	if err := os.WriteFile(filepath.Join(filepath.Dir(rb.path), "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * settleDelay)
	if strings.Contains(rb.log.String(), "tenants reloaded") || configVersion() != started {
		t.Error("an unrelated file in the directory caused a reload")
	}

	doc := rb.write(t, tenantJSON(rb.base, "first", iss.Issuer()), tenantJSON(rb.base, "second", iss.Issuer()))
	eventually(t, "second serves", func() bool { return metadataStatus(t, rb.base, "second") == http.StatusOK })
	if got, want := configVersion(), tenants.Version(doc); got != want {
		t.Errorf("status shows config version %q, want %q", got, want)
	}
	_, metrics := get(t, admin+"/metrics")
	if want := `todo_gateway_config_info{version="` + tenants.Version(doc) + `"} 1`; !strings.Contains(metrics, want) || strings.Contains(metrics, started) {
		t.Errorf("metrics lack %s, or still show the old version", want)
	}
}

func jsonRequest(url, token, body string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// A restart-only setting changed in the file is named once, not on every
// later reload, and the reload line lists no tenants as [], not null.
func TestReloadNamesRestartOnlySettingsOnce(t *testing.T) {
	iss := providertest.New(t)
	rb := newReloadBed(t, false, func(base string) []string { return []string{tenantJSON(base, "a", iss.Issuer())} })
	writeDoc := func(tenantsJSON ...string) {
		doc := fmt.Sprintf(`{"listen": "127.0.0.1:0", "admin": {"listen": "127.0.0.1:0"}, "store": {"bbolt": {"path": %q}}, "shutdown": {"grace": "3s"}, "tenants": [%s]}`,
			rb.db, strings.Join(tenantsJSON, ","))
		if err := os.WriteFile(rb.path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := rb.gw.reloader.reload(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	writeDoc(tenantJSON(rb.base, "a", iss.Issuer()))
	writeDoc(tenantJSON(rb.base, "a", iss.Issuer()), tenantJSON(rb.base, "b", iss.Issuer()))
	log := rb.log.String()
	if n := strings.Count(log, `"settings":["shutdown"]`); n != 1 {
		t.Errorf("the restart-only change was reported %d times, want once:\n%s", n, log)
	}
	if strings.Contains(log, `"changed":null`) || !strings.Contains(log, `"added":["b"],"changed":[]`) {
		t.Errorf("the reload lines:\n%s", log)
	}
}

// A busy file beside the configuration (the gateway's own log, written
// without pause) neither triggers reloads nor holds back the one an edit
// of the configuration asks for (issue 24: every write to the log
// restarted the settle delay, and 100 edits applied nothing).
func TestReloadBesideABusyFile(t *testing.T) {
	iss := providertest.New(t)
	rb := newReloadBed(t, true, func(base string) []string { return []string{tenantJSON(base, "first", iss.Issuer())} })
	logPath := filepath.Join(filepath.Dir(rb.path), "gw.log")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Create(logPath)
		if err != nil {
			return
		}
		defer f.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				f.WriteString(`{"msg":"access"}` + "\n")
			}
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(4 * settleDelay)
	if strings.Contains(rb.log.String(), "tenants reloaded") {
		t.Error("writes to a neighbouring file caused a reload")
	}
	rb.write(t, tenantJSON(rb.base, "first", iss.Issuer()), tenantJSON(rb.base, "second", iss.Issuer()))
	eventually(t, "second serves while the neighbour is written", func() bool { return metadataStatus(t, rb.base, "second") == http.StatusOK })
}
