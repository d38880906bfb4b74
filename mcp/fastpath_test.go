package mcp

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/binary"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// FuzzFastPath: two gateways over two stores holding the same todos, one
// answering with its fast path where it applies, the other always with
// mcp-go, get the same request; their answers must have the same status,
// the same headers, and bodies equal as JSON values (numbers compared as
// written, so an id answered as 1e+21 differs from 1000000000000000000000).
// Whenever the fast path takes a request, the method and tool it reads
// must be those peekCall reads, since the permission check relies on them.
//
// The inputs are the body, who asks (admin, user, reader, or a caller with
// no permission) and a byte choosing the headers (protocol version,
// Content-Type, session id, Mcp-Name).
func FuzzFastPath(f *testing.F) {
	for _, s := range fastSeeds() {
		f.Add([]byte(s.body), s.who, s.hdr)
	}
	d := newDiffBed(f)
	f.Fuzz(func(t *testing.T, body []byte, who, hdr uint8) {
		d.compare(t, body, who, hdr)
	})
}

// FuzzFastPathCall is FuzzFastPath on bodies built around a tools/call
// envelope, {"jsonrpc":"2.0","id":<id>,"method":"tools/call","params":
// {"name":<name>,"arguments":<args><params>}<top>}, so that the fuzzer
// spends its time on ids, names, arguments and extra members next to the
// fast path's edge rather than on bodies that are not JSON at all. An
// empty args leaves "arguments" out.
func FuzzFastPathCall(f *testing.F) {
	for _, s := range []struct{ id, name, args, params, top string }{
		{`1`, `"get-todos"`, `{}`, ``, ``},
		{`"a"`, `"get-todos"`, `{"limit":1,"cursor":"` + seedCursor + `"}`, ``, ``},
		{`1.5`, `"get-todos"`, ``, ``, ``},
		{`-0`, `"create-todo"`, `{"content":"<x> & \u2028"}`, ``, ``},
		{`12345678901234567890`, `"create-todo"`, `{"content":"x"}`, `,"_meta":{"progressToken":"p"}`, ``},
		{`1e2`, `"delete-todo"`, `{"id":"` + seedIDs[0] + `"}`, ``, ``},
		{`"é"`, `"delete-todo"`, `{"id":"` + seedIDs[1] + `"}`, ``, `,"extra":null`},
		{`0`, `"get-todos"`, `{"limit":"1"}`, `,"name":"create-todo"`, ``},
		{`0`, `"get-todos"`, `null`, ``, `,"Method":"x"`},
	} {
		f.Add(s.id, s.name, s.args, s.params, s.top, uint8(0), uint8(0))
		f.Add(s.id, s.name, s.args, s.params, s.top, uint8(1), uint8(3))
	}
	d := newDiffBed(f)
	f.Fuzz(func(t *testing.T, id, name, args, params, top string, who, hdr uint8) {
		body := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":` + name
		if args != "" {
			body += `,"arguments":` + args
		}
		body += params + `}` + top + `}`
		d.compare(t, []byte(body), who, hdr)
	})
}

// Every seed of FuzzFastPath through both paths, with how many took the
// fast path; the ones a client sends most must.
func TestFastPathSeeds(t *testing.T) {
	d := newDiffBed(t)
	fast := 0
	for _, s := range fastSeeds() {
		if d.compare(t, []byte(s.body), s.who, s.hdr) {
			fast++
		}
	}
	t.Logf("%d of %d seeds took the fast path", fast, len(fastSeeds()))
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`,
		`{"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}},"jsonrpc":"2.0","id":0}`,
		`{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"delete-todo","arguments":{"id":"x"}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get-todos"}}`,
	} {
		for _, v := range []string{"", "2025-03-26", "2025-06-18", "2025-11-25"} {
			h := http.Header{"Content-Type": {"application/json"}}
			if v != "" {
				h.Set("Mcp-Protocol-Version", v)
			}
			if !d.todo().Read(h, []byte(body)).Fast() {
				t.Errorf("protocol %q: %s does not take the fast path", v, body)
			}
		}
	}
}

// Where the tenant answers a missing permission with a tool error, both
// paths give the same answers, that tool error included (the seeds call
// create-todo as a reader and as a caller without permissions).
func TestFastPathSeedsToolError(t *testing.T) {
	d := newDiffBedAnswering(t, tenants.MissingPermissionToolError)
	for _, s := range fastSeeds() {
		d.compare(t, []byte(s.body), s.who, s.hdr)
	}
	// And the fast path does take the refused create.
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"}}}`)
	if !d.todo().Read(h, body).Fast() {
		t.Fatal("a create-todo call does not take the fast path")
	}
	rec := httptest.NewRecorder()
	d.fast.ServeHTTP(rec, d.request(body, 2, 0)) // carol: read only
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"isError":true`) || !strings.Contains(rec.Body.String(), "requires the create:todos scope") {
		t.Errorf("create-todo without the create scope: %d %s, want a tool error naming create:todos", rec.Code, rec.Body.String())
	}
}

type fastSeed struct {
	body     string
	who, hdr uint8
}

// Seeded todos' ids, and the cursor after the first.
var (
	seedIDs    = []string{memID(1), memID(2), memID(3), memID(4)}
	seedCursor = store.EncodeCursor(seedIDs[0])
)

// fastSeeds are requests of every kind: each tool with valid, invalid and
// missing arguments, ids of every JSON kind, extra, duplicate, case-folded
// and nested members, _meta, batches, notifications, other methods and
// malformed input.
func fastSeeds() []fastSeed {
	call := func(id, params string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params + `}`
	}
	tool := func(name, args string) string {
		if args == "" {
			return `{"name":"` + name + `"}`
		}
		return `{"name":"` + name + `","arguments":` + args + `}`
	}
	var seeds []fastSeed
	add := func(body string, who, hdr uint8) { seeds = append(seeds, fastSeed{body, who, hdr}) }
	// Every tool, every caller, every argument shape.
	args := map[string][]string{
		todo.ToolGetTodos: {"", `{}`, `null`, `[]`, `"x"`, `{"limit":1}`, `{"limit":0}`, `{"limit":1.5}`, `{"limit":"2"}`,
			`{"limit":-1}`, `{"limit":1e3}`, `{"limit":1001}`, `{"limit":true}`, `{"limit":1e400}`, `{"limit":null}`,
			`{"cursor":"` + seedCursor + `"}`, `{"cursor":"` + seedCursor + `","limit":1}`, `{"limit":1,"cursor":""}`,
			`{"cursor":"nope"}`, `{"cursor":5}`, `{"other":{"a":[1,{"b":null}]}}`, `{"limit":1,"limit":2}`, `{"Limit":1}`},
		todo.ToolCreateTodo: {"", `{}`, `{"content":"x"}`, `{"content":"<b>&amp;</b> \u2028 \u2029 é 😀"}`, `{"content":""}`,
			`{"content":"   "}`, `{"content":5}`, `{"content":null}`, `{"content":"` + strings.Repeat("é", 6000) + `"}`,
			`{"content":"unavailable"}`, `{"content":"broken"}`, `{"content":"\ud800"}`, "{\"content\":\"\xff\"}",
			`{"content":"a\u0000b"}`, `{"content":"x","content":"y"}`, `{"Content":"x"}`, `{"content":"\"quoted\" \\ \/ \b\f\n\r\t"}`},
		todo.ToolDeleteTodo: {"", `{}`, `{"id":"` + seedIDs[0] + `"}`, `{"id":"` + seedIDs[2] + `"}`, `{"id":"` + memID(99) + `"}`,
			`{"id":""}`, `{"id":5}`, `{"id":"unavailable"}`, `{"id":"broken"}`, `{"id":"x"}`},
	}
	for _, name := range []string{todo.ToolGetTodos, todo.ToolCreateTodo, todo.ToolDeleteTodo} {
		for i, a := range args[name] {
			for who := range uint8(4) {
				add(call("1", tool(name, a)), who, uint8(i))
			}
		}
	}
	// Ids.
	for _, id := range []string{`"abc"`, `""`, `0`, `-1`, `1.5`, `1e2`, `1E+2`, `12345678901234567890`, `-0`, `1e300`,
		`1e400`, `1e-400`, `9007199254740993`, `0.1`, `1e-7`, `1e21`, `123456789012345678901234567890`, `"\u00e9"`, `"<script>&"`,
		`"\u2028"`, `"\ud800"`, "\"\xff\"", `true`, `null`, `{}`, `[]`} {
		add(call(id, tool(todo.ToolGetTodos, `{}`)), 0, 0)
		add(call(id, tool(todo.ToolCreateTodo, `{"content":"x"}`)), 1, 0)
	}
	add(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get-todos"}}`, 0, 0) // no id: a notification
	// Extra, duplicate, case-folded and nested members.
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"},"extra":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","extra":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":5}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","task":{"ttl":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","NAME":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","name":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","ID":1,"method":"tools/call","params":{"name":"get-todos"}}`,
		`{"JSONRPC":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}},"params":{"name":"create-todo","arguments":{"content":"x"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{},"arguments":{"limit":1}}}`,
		`{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}`,
		`{"id":1,"method":"tools/call","params":{"name":"get-todos"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"},"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"},"error":{"code":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"GET-TODOS"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{"limit":{"a":[1,{"b":[null,true,"\u00e9"]}]}}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{"x":{"y":1,"y":2}}}}`,
		"\ufeff" + `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}`,
		" \n\t" + `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}` + " \n",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}} x`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}{}`,
		`{"jsonrpc":"2\u002e0","id":1,"method":"tools\/call","params":{"name":"get\u002dtodos"}}`,
		// Batches, notifications, other methods, malformed input.
		`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}]`,
		`[]`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"no/such"}`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{`, `null`, `""`, `1`, ``, `{"method":7,"params":"x"}`,
	} {
		for who := range uint8(2) {
			add(body, who, 0)
		}
	}
	// Header choices on the commonest call.
	for hdr := range 128 {
		add(call("1", tool(todo.ToolGetTodos, `{}`)), uint8(hdr%4), uint8(hdr))
	}
	return seeds
}

// diffBed is the pair of gateways FuzzFastPath compares.
type diffBed struct {
	fast, slow     *Gateway
	fastSt, slowSt *memStore
	resource, host string
}

// Who asks, by the fuzzer's who%4: subjects and permissions.
var diffCallers = []struct {
	sub   string
	perms []providers.Permission
}{
	{"alice", []providers.Permission{providers.PermCreate, providers.PermRead, providers.PermDelete}},
	{"bob", []providers.Permission{providers.PermCreate}},
	{"carol", []providers.Permission{providers.PermRead}},
	{"dave", nil},
}

func newDiffBed(t testing.TB) *diffBed { return newDiffBedAnswering(t, "") }

// newDiffBedAnswering is newDiffBed with the tenant's missing_permission.
func newDiffBedAnswering(t testing.TB, missingPermission string) *diffBed {
	d := &diffBed{fastSt: newMemStore(), slowSt: newMemStore()}
	cfg := genConfig("diff", "acme")
	cfg.Tenants[0].MissingPermission = missingPermission
	d.resource = cfg.Tenants[0].Resource
	d.host = "localhost:3001"
	verifier := func(*tenants.Tenant) (providers.Verifier, error) { return callerVerifier{}, nil }
	for _, gw := range []**Gateway{&d.fast, &d.slow} {
		st := d.fastSt
		if gw == &d.slow {
			st = d.slowSt
		}
		*gw = New(st, Options{Logger: slog.New(slog.DiscardHandler), NewVerifier: verifier})
		if _, err := (*gw).Apply(context.Background(), cfg, "v1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*gw).Close(context.Background()) })
	}
	for _, st := range d.slow.Current().states {
		o := d.slow.todoOptions(st.tenant, st.verifier)
		o.MCPOnly = true // mcp-go only
		st.server = todoServer{todo.New(o)}
	}
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}`)
	if !d.todo().Read(h, body).Fast() || d.slow.Current().states[0].server.(todoServer).Server.Read(h, body).Fast() {
		t.Fatal("the fast path is not the one gateway's only")
	}
	return d
}

// todo is the todo server of the gateway that takes the fast path.
func (d *diffBed) todo() *todo.Server { return d.fast.Current().states[0].server.(todoServer).Server }

// callerVerifier takes the token for the index of a caller.
type callerVerifier struct{}

func (callerVerifier) Verify(_ context.Context, raw string) (*providers.Principal, error) {
	var i int
	if _, err := fmt.Sscanf(raw, "caller-%d", &i); err != nil || i < 0 || i >= len(diffCallers) {
		return nil, &providers.Error{Class: providers.ClassInvalidToken, Reason: "unknown token"}
	}
	c := diffCallers[i]
	p := &providers.Principal{Tenant: "acme", Subject: c.sub, Permissions: map[providers.Permission]bool{}}
	for _, perm := range c.perms {
		p.Permissions[perm] = true
	}
	return p, nil
}

// Header choices, by bits of the fuzzer's hdr.
var (
	diffVersions     = []string{"", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "2024-11-05", "bogus", "2025-06-18, 2025-11-25"}
	diffContentTypes = []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain"}
)

func (d *diffBed) request(body []byte, who, hdr uint8) *http.Request {
	r := httptest.NewRequest(http.MethodPost, d.resource, bytes.NewReader(body))
	r.Host = d.host
	r.Header.Set("Authorization", fmt.Sprintf("Bearer caller-%d", who%4))
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("X-Request-Id", "req-diff")
	r.Header.Set("Content-Type", diffContentTypes[(hdr>>3)%4])
	if v := diffVersions[hdr%8]; v != "" {
		r.Header.Set("Mcp-Protocol-Version", v)
	}
	if hdr&(1<<5) != 0 {
		r.Header.Set("Mcp-Session-Id", "s-1")
	}
	if hdr&(1<<6) != 0 {
		r.Header.Set("Mcp-Name", todo.ToolGetTodos)
	}
	return r
}

// compare sends the request to both gateways over the same todos and fails
// t if the answers differ; it reports whether the fast path took it.
func (d *diffBed) compare(t *testing.T, body []byte, who, hdr uint8) bool {
	t.Helper()
	probe := d.request(body, who, hdr)
	c := d.todo().Read(probe.Header, body)
	fast := c.Fast()
	if fast {
		want, wantOK := peekCall(body)
		if got, _ := peekFast(c, body); !wantOK || got != want {
			t.Fatalf("%q: the fast path reads %+v, peekCall %+v (ok %v)", body, got, want, wantOK)
		}
	}
	answer := func(gw *Gateway, st *memStore) (*http.Response, []byte) {
		st.reset()
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, d.request(body, who, hdr))
		// Each answer has a request id of its own, in X-Request-Id and
		// in any "(request …)" of a failure: it is not compared.
		res, out := rec.Result(), rec.Body.Bytes()
		if id := res.Header.Get("X-Request-Id"); id != "" {
			res.Header.Del("X-Request-Id")
			out = bytes.ReplaceAll(out, []byte(id), []byte("<request id>"))
		}
		return res, out
	}
	got, gotBody := answer(d.fast, d.fastSt)
	want, wantBody := answer(d.slow, d.slowSt)
	if diff := answerDiff(got, gotBody, want, wantBody); diff != "" {
		t.Fatalf("who %d, hdr %#x, body %q (fast path %v):\n%s", who%4, hdr, body, fast, diff)
	}
	// Stricter than the JSON values: the fast path writes mcp-go's bytes
	// (escaping, member order, number formatting, the final newline).
	if fast && !bytes.Equal(gotBody, wantBody) {
		t.Fatalf("who %d, hdr %#x, body %q: equal values, but the fast path wrote\n%q\nand mcp-go\n%q", who%4, hdr, body, gotBody, wantBody)
	}
	if !reflect.DeepEqual(d.fastSt.snapshot(), d.slowSt.snapshot()) {
		t.Fatalf("who %d, hdr %#x, body %q: the stores differ after the call", who%4, hdr, body)
	}
	return fast
}

// answerDiff describes how two answers differ: status, headers, and the
// bodies as JSON values (as bytes when not JSON); "" when they do not.
func answerDiff(got *http.Response, gotBody []byte, want *http.Response, wantBody []byte) string {
	var diffs []string
	if got.StatusCode != want.StatusCode {
		diffs = append(diffs, fmt.Sprintf("status %d, mcp-go %d", got.StatusCode, want.StatusCode))
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		diffs = append(diffs, fmt.Sprintf("headers %v, mcp-go %v", got.Header, want.Header))
	}
	g, gerr := jsonValue(gotBody)
	w, werr := jsonValue(wantBody)
	switch {
	case gerr != nil || werr != nil:
		if !bytes.Equal(gotBody, wantBody) {
			diffs = append(diffs, fmt.Sprintf("body %q, mcp-go %q", gotBody, wantBody))
		}
	case !reflect.DeepEqual(g, w):
		diffs = append(diffs, fmt.Sprintf("body %s, mcp-go %s", gotBody, wantBody))
	}
	return strings.Join(diffs, "\n")
}

// jsonValue decodes one JSON value, numbers kept as written.
func jsonValue(b []byte) (any, error) {
	dec := stdjson.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one value")
	}
	return v, nil
}

// memStore is a store.Store in memory whose ids depend only on the order of
// creation, so that two of them given the same calls answer the same. It
// checks input as the real backends do; content "unavailable" and id
// "unavailable" fail as an unreachable store, "broken" as an internal error.
type memStore struct {
	mu    sync.Mutex
	todos map[string][]store.Todo // by tenant, in id order
	next  uint64
}

var memSeed = []store.Todo{
	{ID: memID(1), Content: "first <one> & \u2028", OwnerID: "alice"},
	{ID: memID(2), Content: "second, bob's", OwnerID: "bob"},
	{ID: memID(3), Content: "third \"é\"", OwnerID: "alice"},
	{ID: memID(4), Content: strings.Repeat("<long> & \u2028 \"quoted\" \\ é 😀\t", 120), OwnerID: "carol"},
}

func newMemStore() *memStore {
	m := &memStore{}
	m.reset()
	return m
}

// reset makes the store hold the seeded todos, as if new.
func (m *memStore) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.todos = map[string][]store.Todo{}
	for _, t := range memSeed {
		t.CreatedAt, _ = store.IDTime(t.ID)
		m.todos["acme"] = append(m.todos["acme"], t)
	}
	m.next = 100
}

func (m *memStore) snapshot() map[string][]store.Todo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]store.Todo{}
	for k, v := range m.todos {
		out[k] = slices.Clone(v)
	}
	return out
}

var memEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// memID is the nth id: a fixed millisecond and n.
func memID(n uint64) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(1_767_225_600_000)<<16)
	binary.BigEndian.PutUint64(raw[8:], n)
	return memEncoding.EncodeToString(raw[:])
}

func (m *memStore) EnsureTenants(_ context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if _, ok := m.todos[id]; !ok {
			m.todos[id] = nil
		}
	}
	return nil
}

func (m *memStore) Create(_ context.Context, tenant, owner, content string) (store.Todo, error) {
	todo, _, err := store.NewTodo(tenant, owner, content)
	switch {
	case err != nil:
		return store.Todo{}, err
	case content == "unavailable":
		return store.Todo{}, fmt.Errorf("create: %w: no quorum", store.ErrUnavailable)
	case content == "broken":
		return store.Todo{}, errors.New("create: disk on fire")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.todos[tenant]; !ok {
		return store.Todo{}, store.ErrUnknownTenant
	}
	m.next++
	todo.ID = memID(m.next)
	todo.CreatedAt, _ = store.IDTime(todo.ID)
	m.todos[tenant] = append(m.todos[tenant], todo)
	return todo, nil
}

func (m *memStore) Get(_ context.Context, tenant, id string) (store.Todo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.todos[tenant] {
		if t.ID == id {
			return t, nil
		}
	}
	return store.Todo{}, store.NotFound(tenant, id)
}

func (m *memStore) List(_ context.Context, tenant string, opts store.ListOptions) (store.Page, error) {
	limit, after, err := opts.Resolve(tenant)
	if err != nil {
		return store.Page{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	page := store.Page{Todos: []store.Todo{}}
	for _, t := range m.todos[tenant] {
		if t.ID <= after || (opts.Owner != "" && t.OwnerID != opts.Owner) {
			continue
		}
		if len(page.Todos) == limit {
			page.NextCursor = store.EncodeCursor(page.Todos[limit-1].ID)
			break
		}
		page.Todos = append(page.Todos, t)
	}
	return page, nil
}

func (m *memStore) Delete(_ context.Context, tenant, id string, allow func(store.Todo) bool) (store.Todo, error) {
	if err := store.ValidateTodoKey(tenant, id); err != nil {
		return store.Todo{}, err
	}
	switch {
	case allow == nil:
		return store.Todo{}, fmt.Errorf("%w: no condition", store.ErrInvalid)
	case id == "unavailable":
		return store.Todo{}, fmt.Errorf("delete: %w: no quorum", store.ErrUnavailable)
	case id == "broken":
		return store.Todo{}, errors.New("delete: disk on fire")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	todos := m.todos[tenant]
	for i, t := range todos {
		if t.ID == id {
			if !allow(t) {
				return store.Todo{}, store.ErrDenied
			}
			m.todos[tenant] = slices.Delete(todos, i, i+1)
			return t, nil
		}
	}
	return store.Todo{}, store.NotFound(tenant, id)
}

func (m *memStore) Close() error { return nil }

func (m *memStore) Tenants(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m.todos {
			if !yield(k) {
				return
			}
		}
	}), nil
}

func (m *memStore) Import(context.Context, string, []store.Todo) (int, error) {
	return 0, errors.New("not supported")
}
