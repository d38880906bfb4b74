package mcp_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf16"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// TestUpstreamHeadersPassBothWays: the transport's own headers reach the
// upstream (trace context, protocol version, 2026-07-28 routing headers,
// the resumption cursor), hop-by-hop headers do not, and the upstream's
// headers reach the client but for its cookies, its challenges, its CORS
// (a browser refuses two Access-Control-Allow-Origin values) and what
// would set policy for the whole origin every tenant shares.
func TestUpstreamHeadersPassBothWays(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Set("Set-Cookie", "upstream=1")
		w.Header().Set("WWW-Authenticate", `Bearer realm="upstream"`)
		w.Header().Set("Access-Control-Allow-Origin", "*") // as express's cors() sets it
		w.Header().Set("Access-Control-Expose-Headers", "Mcp-Session-Id")
		w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		w.Header().Set("Alt-Svc", `h2=":9443"`)
		w.Header().Set("Clear-Site-Data", `"cookies", "storage"`)
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`))
	}))
	t.Cleanup(up.Close)
	b := newEdgeBed(t, withSigner(t))
	url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp"}, notesServerBlock, "challenge")
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	resp, body := post(t, url, b.token("notes", "rita", notesReader...), callBody(1, "search", `{}`),
		"Traceparent", traceparent, "Tracestate", "vendor=1", "Mcp-Protocol-Version", "2026-07-28",
		"Mcp-Method", "tools/call", "Mcp-Name", "search", "Last-Event-ID", "evt-7",
		"Connection", "X-Hop", "X-Hop", "secret-hop", "X-Custom", "kept", "Origin", b.URL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("call: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{"Traceparent": traceparent, "Tracestate": "vendor=1", "Mcp-Protocol-Version": "2026-07-28",
		"Mcp-Method": "tools/call", "Mcp-Name": "search", "Last-Event-Id": "evt-7", "X-Custom": "kept", "X-Hop": ""} {
		if g := got.Get(name); g != want {
			t.Errorf("upstream got %s %q, want %q", name, g, want)
		}
	}
	if resp.Header.Get("X-Upstream") != "yes" || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("client got X-Upstream %q, Set-Cookie %q, WWW-Authenticate %q", resp.Header.Get("X-Upstream"),
			resp.Header.Get("Set-Cookie"), resp.Header.Get("WWW-Authenticate"))
	}
	if acao := resp.Header.Values("Access-Control-Allow-Origin"); len(acao) != 1 || acao[0] != b.URL {
		t.Errorf("client got Access-Control-Allow-Origin %q, want the gateway's one, %q", acao, b.URL)
	}
	if expose := resp.Header.Values("Access-Control-Expose-Headers"); len(expose) != 1 || !strings.Contains(expose[0], "Mcp-Session-Id") {
		t.Errorf("client got Access-Control-Expose-Headers %q, want the gateway's one", expose)
	}
	for _, name := range []string{"Strict-Transport-Security", "Alt-Svc", "Clear-Site-Data"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("client got the upstream's %s %q", name, v)
		}
	}
}

// TestUpstreamConcurrencyCap: past max_concurrent open requests the
// tenant answers 503 with Retry-After, without reaching the upstream; a
// slot freed serves again.
func TestUpstreamConcurrencyCap(t *testing.T) {
	release := make(chan struct{})
	var calls sync.WaitGroup
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(": open\n\n"))
		w.(http.Flusher).Flush()
		if r.Method == http.MethodGet {
			<-release
		}
		calls.Done()
	}))
	t.Cleanup(up.Close)
	b := newEdgeBed(t, withSigner(t))
	url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp"},
		`{"type": "upstream", "url": "URL", "max_concurrent": 1, "permissions": {"tools": {"search": []}}}`, "challenge")
	token := b.token("notes", "rita")
	calls.Add(1)
	resp, err := httpClient.Do(request(t, http.MethodGet, url, "", "Authorization", bearer(token), "Accept", "text/event-stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); !strings.HasPrefix(line, ": open") {
		t.Fatalf("stream opened with %q", line)
	}
	busy, body := post(t, url, token, callBody(1, "search", `{}`))
	if busy.StatusCode != http.StatusServiceUnavailable || busy.Header.Get("Retry-After") == "" || !strings.Contains(body, "upstream_busy") {
		t.Errorf("second request while the first is open: %d %s, want 503 upstream_busy", busy.StatusCode, body)
	}
	close(release)
	calls.Wait()
	resp.Body.Close()
	calls.Add(1)
	var again *http.Response
	for range 100 { // the slot is freed when the first handler returns
		again, body = post(t, url, token, callBody(2, "search", `{}`))
		if again.StatusCode != http.StatusServiceUnavailable {
			break
		}
	}
	if again.StatusCode != http.StatusOK {
		t.Errorf("after the stream ended: %d %s", again.StatusCode, body)
	}
	calls.Wait()
	if n := metricValue(t, b.reg, "todo_gateway_upstream_requests_total", map[string]string{"tenant": "notes", "outcome": "busy"}); n < 1 {
		t.Errorf("busy outcomes %v, want at least 1", n)
	}
}

// TestUpstreamCallWithoutToolName: a tools/call naming no tool (none, or
// a name that is no string) is refused as not exposed, in words that say
// so, and never forwarded.
func TestUpstreamCallWithoutToolName(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	for _, body := range []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}`} {
		resp, got := post(t, url, b.token("notes", "rita", notesReader...), body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(got, "a tools/call without a tool name is not available") {
			t.Errorf("%s: %d %s", body, resp.StatusCode, got)
		}
	}
	if n := len(ns.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestUpstreamBodyLimit: an upstream tenant's body_limit replaces
// http.body_limit for it: 413 past it, before the upstream.
func TestUpstreamBodyLimit(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, `{"type": "upstream", "url": "URL", "body_limit": 2048, "permissions": {"tools": {"search": []}}}`, "challenge")
	big := callBody(1, "search", `{"q":"`+strings.Repeat("x", 3000)+`"}`)
	resp, body := post(t, url, b.token("notes", "rita"), big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "larger than 2048 bytes") {
		t.Errorf("3 KB body: %d %s, want 413", resp.StatusCode, body)
	}
	if n := len(ns.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestUpstreamCompressedToolLists: a tools/list answer the upstream
// compresses is filtered all the same, JSON or SSE: the gateway does not
// pass the client's Accept-Encoding on, and its transport asks for gzip
// and decodes it. An encoding nobody asked for is answered 502, never
// passed unfiltered; so is a list the filter cannot read as UTF-8 JSON or
// SSE (UTF-16, another Content-Type, none).
func TestUpstreamCompressedToolLists(t *testing.T) {
	const list = `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"},{"name":"add"}]}}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := []byte(list)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("sse") != "" {
			w.Header().Set("Content-Type", "text/event-stream")
			body = []byte("event: message\ndata: " + list + "\n\n")
		}
		switch ct := r.URL.Query().Get("type"); ct {
		case "":
		case "none":
			w.Header()["Content-Type"] = nil // not even sniffed
		default:
			w.Header().Set("Content-Type", ct)
		}
		if r.URL.Query().Get("utf16") != "" { // what Python's json.loads reads as well as UTF-8
			var le []byte
			for _, u := range utf16.Encode([]rune(list)) {
				le = append(le, byte(u), byte(u>>8))
			}
			body = le
		}
		enc := r.URL.Query().Get("enc")
		if enc == "gzip" && !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			enc = "" // gzip only when asked, as a server should
		}
		if enc != "" {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(body)
			zw.Close()
			body = buf.Bytes()
			w.Header().Set("Content-Encoding", enc)
		}
		w.Write(body)
	}))
	t.Cleanup(up.Close)
	b := newEdgeBed(t, withSigner(t))
	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"gzip JSON", "?enc=gzip", http.StatusOK},
		{"gzip SSE", "?enc=gzip&sse=1", http.StatusOK},
		{"an encoding not asked for", "?enc=br", http.StatusBadGateway},
		{"an encoding not asked for, SSE", "?enc=br&sse=1", http.StatusBadGateway},
		// Not JSON as the filter reads it, or under another type: refused,
		// never passed unread.
		{"UTF-16 JSON", "?utf16=1", http.StatusBadGateway},
		{"a list as text/plain", "?type=text/plain", http.StatusBadGateway},
		{"a list with no Content-Type", "?type=none", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp" + tc.query}, notesServerBlock, "challenge")
			resp, body := post(t, url, b.token("notes", "rita", notesReader...), `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
				"Accept-Encoding", "gzip, br")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("the answer is still encoded: %q", resp.Header.Get("Content-Encoding"))
			}
			if tc.status == http.StatusOK && (!strings.Contains(body, `"search"`) || strings.Contains(body, `"add"`)) {
				t.Errorf("the reader's list %s, want search without add", body)
			}
			if tc.status != http.StatusOK && strings.Contains(body, "add") {
				t.Errorf("the refused answer leaks the list: %s", body)
			}
		})
	}
}

// TestUpstreamRefusesAmbiguousMessages: a message whose members JSON
// readers could read apart is refused with 400 and a JSON-RPC -32600
// before the upstream sees it, alone or in a batch. The gateway reads
// {"name":"add","Name":"search"} as search (encoding/json, as mcp-go), a
// TypeScript or Python upstream as add: forwarded, it would run a tool the
// caller lacks the permission for (e2e/test/upstream-everything.test.mjs
// shows it against server-everything). The same call, written plainly,
// is checked and forwarded as before.
func TestUpstreamRefusesAmbiguousMessages(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	ns := newNotesServer(t)
	url := b.addUpstreamTenant(t, ns, notesServerBlock, "challenge")
	reader := b.token("notes", "rita", notesReader...)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","Name":"search"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","METHOD":"ping","params":{"name":"add"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"},"paramſ":{"name":"search"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","name":"search"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","n\u0061m\u0065\u0000":"search"}}]`,
	} {
		resp, got := post(t, url, reader, body)
		var answer struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(got), &answer)
		if resp.StatusCode != http.StatusBadRequest || answer.Error.Code != mcpgo.INVALID_REQUEST ||
			!strings.Contains(answer.Error.Message, "JSON readers") {
			t.Errorf("%s: %d %s, want 400 with a -32600 that says why", body, resp.StatusCode, got)
		}
		// The refusal is a decision like any other: an audit line says it.
		audit := b.lineOf(t, "audit", resp.Header.Get("X-Request-Id"))
		if reason, _ := audit["reason"].(string); audit["decision"] != "deny" || !strings.Contains(reason, "JSON readers") {
			t.Errorf("%s: audit line %v, want a deny that says why", body, audit)
		}
	}
	if n := len(ns.requests()); n != 0 {
		t.Errorf("the upstream got %d requests, want none", n)
	}
	c := connectUpstream(t, url, reader)
	if res, err := callTool(t, c, "search"); err != nil || res.IsError {
		t.Errorf("search, written plainly: %v %v", res, err)
	}
	if _, err := callTool(t, c, "add"); err == nil {
		t.Error("add without notes:write was forwarded")
	}
}

// writeAnswer answers as JSON, or as one SSE event when the upstream's URL
// asks for it (?sse=1).
func writeAnswer(w http.ResponseWriter, r *http.Request, answer string) {
	if r.URL.Query().Get("sse") != "" {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message\ndata: "+answer+"\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, answer)
}

// TestUpstreamCacheableResultsArePrivate: every cacheable result an
// upstream tenant relays (2026-07-28's lists, resources/read and
// server/discover) is the caller's own (the gateway decided who may have
// it), so its cacheScope "public" reaches the client as "private", JSON or
// SSE; resources/read only under a version that has cache hints (it is
// streamed otherwise); an answer to anything else passes as the upstream
// wrote it.
func TestUpstreamCacheableResultsArePrivate(t *testing.T) {
	answers := map[string]string{
		"prompts/list":             `{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"p"}],"ttlMs":60000,"cacheScope":"public"}}`,
		"resources/list":           `{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"notes://readme","name":"readme"}],"ttlMs":60000,"cacheScope":"public"}}`,
		"resources/templates/list": `{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[],"ttlMs":60000,"cacheScope":"public"}}`,
		"tools/list":               `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search"}],"ttlMs":60000,"cacheScope":"public"}}`,
		"server/discover":          `{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28"],"ttlMs":60000,"cacheScope":"public"}}`,
		"resources/read":           `{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"notes://readme","text":"hello"}],"ttlMs":60000,"cacheScope":"public"}}`,
		"prompts/get":              `{"jsonrpc":"2.0","id":1,"result":{"messages":[],"cacheScope":"public"}}`,
	}
	var reached atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		var msg struct{ Method string }
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &msg)
		writeAnswer(w, r, answers[msg.Method])
	}))
	t.Cleanup(up.Close)
	b := newEdgeBed(t, withSigner(t))
	for _, query := range []string{"", "?sse=1"} {
		url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp" + query}, notesServerBlock, "challenge")
		token := b.token("notes", "rita", notesReader...)
		for _, version := range []string{"2026-07-28", "2025-11-25"} {
			for method := range answers {
				resp, body := post(t, url, token, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":{"uri":"notes://readme","name":"p"}}`,
					"Mcp-Protocol-Version", version)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s%s under %s: status %d: %s", method, query, version, resp.StatusCode, body)
				}
				want := `"cacheScope":"private"`
				if method == "prompts/get" || method == "resources/read" && version != "2026-07-28" {
					want = `"cacheScope":"public"` // not read: the upstream's own hint
				}
				if !strings.Contains(body, want) {
					t.Errorf("%s%s under %s: answered %s, want %s in it", method, query, version, body, want)
				}
			}
		}
		// The version a request names in _meta counts as the header's
		// does (it is what the upstream reads), and the two must agree.
		read := func(meta string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"notes://readme","_meta":{"io.modelcontextprotocol/protocolVersion":"` + meta + `"}}}`
		}
		if resp, body := post(t, url, token, read("2026-07-28"), "Mcp-Protocol-Version", "2026-07-28"); resp.StatusCode != http.StatusOK ||
			!strings.Contains(body, `"cacheScope":"private"`) {
			t.Errorf("resources/read%s naming 2026-07-28 twice: %d %s, want it private", query, resp.StatusCode, body)
		}
		for _, tc := range []struct{ meta, header string }{
			{"2026-07-28", "2025-11-25"}, // the header would have the answer passed unread
			{"2026-07-28", ""},           // required beside _meta's
			{"2025-11-25", "2026-07-28"},
		} {
			before := reached.Load()
			header := []string{}
			if tc.header != "" {
				header = []string{"Mcp-Protocol-Version", tc.header}
			}
			resp, body := post(t, url, token, read(tc.meta), header...)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "-32020") || !strings.Contains(body, "Mcp-Protocol-Version") {
				t.Errorf("_meta naming %s, header %q: %d %s, want 400 -32020 naming the header", tc.meta, tc.header, resp.StatusCode, body)
			}
			if reached.Load() != before {
				t.Errorf("_meta naming %s, header %q: the upstream was asked", tc.meta, tc.header)
			}
		}
	}
}

// A tenant's answer_limit bounds what the gateway holds of an answer it
// reads whole: a 2026-07-28 resources/read over it is a 502 (JSON) or
// never reaches the client (SSE, where the status went first); under a
// higher limit it passes, private. Under 2025-11-25 the answer is not read,
// and streams whatever its size.
func TestUpstreamAnswerLimit(t *testing.T) {
	text := strings.Repeat("n", 100<<10)
	answer := `{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"notes://big","text":"` + text + `"}],"cacheScope":"public"}}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		writeAnswer(w, r, answer)
	}))
	t.Cleanup(up.Close)
	b := newEdgeBed(t, withSigner(t))
	read := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"notes://big"}}`
	for _, tc := range []struct {
		limit, query, version string
		wantStatus            int
		want                  string // in the body
	}{
		{"65536", "", "2026-07-28", http.StatusBadGateway, "bad_upstream_answer"},
		{"65536", "?sse=1", "2026-07-28", http.StatusOK, ""},
		{"65536", "", "2025-11-25", http.StatusOK, `"cacheScope":"public"`},
		{"1048576", "", "2026-07-28", http.StatusOK, `"cacheScope":"private"`},
		{"1048576", "?sse=1", "2026-07-28", http.StatusOK, `"cacheScope":"private"`},
	} {
		block := strings.Replace(notesServerBlock, `"url": "URL",`, `"url": "URL", "answer_limit": `+tc.limit+`,`, 1)
		url := b.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp" + tc.query}, block, "challenge")
		resp, body := post(t, url, b.token("notes", "rita", notesReader...), read, "Mcp-Protocol-Version", tc.version)
		name := fmt.Sprintf("answer_limit %s%s under %s", tc.limit, tc.query, tc.version)
		if resp.StatusCode != tc.wantStatus || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %.200s, want %d with %s", name, resp.StatusCode, body, tc.wantStatus, tc.want)
		}
		if tc.want == "" && strings.Contains(body, text) {
			t.Errorf("%s: the event over the limit reached the client", name)
		}
		if tc.wantStatus == http.StatusOK && tc.want != "" && !strings.Contains(body, text) {
			t.Errorf("%s: the contents did not arrive whole", name)
		}
	}
}
