package mcp_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// rpcAnswer is one JSON-RPC response.
type rpcAnswer struct {
	ID     any `json:"id"`
	Result *struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeAnswer(t *testing.T, body string) rpcAnswer {
	t.Helper()
	var a rpcAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("not a JSON-RPC answer: %s (%v)", body, err)
	}
	return a
}

// toolErrorTenant makes acme answer a missing permission with a tool error.
func toolErrorTenant(cfg *tenants.Config) {
	for i := range cfg.Tenants {
		if cfg.Tenants[i].ID == "acme" {
			cfg.Tenants[i].MissingPermission = tenants.MissingPermissionToolError
		}
	}
}

// With missing_permission "tool_error", a call lacking its permission is
// answered as the tutorial does, HTTP 200 and a tool error naming the scope,
// on every protocol version and on both paths (the fast path takes the
// plain legacy call, mcp-go the others); nothing is created, and the audit
// line says deny. The other tenants keep the 403.
func TestMissingPermissionAsToolError(t *testing.T) {
	b := newEdgeBed(t, nil)
	b.reconfigure(t, toolErrorTenant)
	acme := b.resources["acme"]
	reader := b.token("acme", "reader", readerPerms...)

	for _, version := range []string{"", "2025-06-18", "2026-07-28"} {
		headers := []string{"Mcp-Protocol-Version", version}
		if version == "2026-07-28" { // the headers a 2026-07-28 client sends
			headers = append(headers, "Mcp-Method", "tools/call", "Mcp-Name", todo.ToolCreateTodo)
		}
		body := toolCall(todo.ToolCreateTodo)
		if version == "2026-07-28" {
			body = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"x"},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
		}
		resp, got := post(t, acme, reader, body, headers...)
		a := decodeAnswer(t, got)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" || a.Result == nil || !a.Result.IsError ||
			len(a.Result.Content) != 1 || !strings.Contains(a.Result.Content[0].Text, "requires the create:todos scope") {
			t.Errorf("protocol %q: %d %q %s, want 200 with a tool error naming create:todos", version, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), got)
		}
	}
	// Through mcp-go's client too.
	c := connect(t, acme, reader, "2025-11-25")
	if text, isErr := call(t, c, todo.ToolCreateTodo, map[string]any{"content": "x"}); !isErr || !strings.Contains(text, "create:todos") {
		t.Errorf("mcp-go client: %q (isError %v), want the tool error", text, isErr)
	}
	admin := connect(t, acme, b.token("acme", "admin", adminPerms...), "")
	if got := listTodos(t, admin); len(got) != 0 {
		t.Errorf("a refused create created %d todos", len(got))
	}
	if logs := b.logs(t); !strings.Contains(logs, `"decision":"deny","reason":"insufficient_scope: the create-todo tool requires the create:todos scope (answered as a tool error)","status":200`) {
		t.Errorf("no deny audit line for the tool error:\n%s", logs)
	}
	// The default stays the 403.
	resp, body := post(t, b.resources["umbrella"], b.token("umbrella", "reader", readerPerms...), toolCall(todo.ToolCreateTodo))
	wantChallenge(t, resp, body, http.StatusForbidden, `error="insufficient_scope"`)
}

// JSON-RPC batches are served for 2025-03-26, the one version that has
// them, each message as if it came alone; a batch cannot slip a call past
// the permission check.
func TestBatches(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]
	admin := b.token("acme", "admin", adminPerms...)
	reader := b.token("acme", "reader", readerPerms...)
	adminClient := connect(t, acme, admin, "")

	t.Run("a batch holding a call without its permission is the 403 of that call", func(t *testing.T) {
		batch := `[` + toolsList + `,` + toolCall(todo.ToolCreateTodo) + `]`
		for _, version := range []string{"", "2025-03-26"} {
			resp, body := post(t, acme, reader, batch, "Mcp-Protocol-Version", version)
			wantChallenge(t, resp, body, http.StatusForbidden, `error="insufficient_scope"`, `scope="create:todos read:todos"`)
		}
		if got := listTodos(t, adminClient); len(got) != 0 {
			t.Fatalf("a batch created %d todos without the create scope", len(got))
		}
	})
	t.Run("each message is answered, in order, notifications not", func(t *testing.T) {
		batch := `[` + toolsList + `,{"jsonrpc":"2.0","method":"notifications/initialized"},` + toolCall(todo.ToolCreateTodo) +
			`,{"jsonrpc":"2.0","id":"three","method":"tools/call","params":{"name":"get-todos"}},7]`
		resp, body := post(t, acme, admin, batch, "Mcp-Protocol-Version", "2025-03-26")
		var answers []rpcAnswer
		if err := json.Unmarshal([]byte(body), &answers); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("batch: %d %s (%v), want 200 and an array", resp.StatusCode, body, err)
		}
		if len(answers) != 4 || answers[0].ID != float64(1) || answers[1].ID != float64(2) || answers[2].ID != "three" || answers[3].ID != nil {
			t.Fatalf("batch answers %s, want ids 1, 2, three and null", body)
		}
		if answers[1].Result == nil || answers[1].Result.IsError || answers[2].Result == nil || !strings.Contains(answers[2].Result.Content[0].Text, `"content":"x"`) {
			t.Errorf("the create and the list that follows it: %s", body)
		}
		if answers[3].Error == nil || answers[3].Error.Code != mcpgo.INVALID_REQUEST {
			t.Errorf("a member that is no message: %s, want -32600", body)
		}
	})
	t.Run("notifications only are 202", func(t *testing.T) {
		resp, body := post(t, acme, admin, `[{"jsonrpc":"2.0","method":"notifications/initialized"}]`)
		if resp.StatusCode != http.StatusAccepted || body != "" {
			t.Errorf("notifications only: %d %q, want 202 without a body", resp.StatusCode, body)
		}
	})
	t.Run("initialize is not batched", func(t *testing.T) {
		resp, body := post(t, acme, admin, `[{"jsonrpc":"2.0","id":9,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}]`)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"id":9`) || !strings.Contains(body, "initialize must not be part of a batch") {
			t.Errorf("batched initialize: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("refused batches are JSON-RPC errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			header     []string
			code       int
		}{
			{"other protocol version", `[` + toolsList + `]`, []string{"Mcp-Protocol-Version", "2025-06-18"}, mcpgo.INVALID_REQUEST},
			{"empty", `[]`, nil, mcpgo.INVALID_REQUEST},
			{"not JSON", `[{`, nil, mcpgo.PARSE_ERROR},
			{"too many", `[` + strings.Repeat(toolsList+`,`, 100) + toolsList + `]`, nil, mcpgo.INVALID_REQUEST},
			{"routing headers", `[` + toolsList + `]`, []string{"Mcp-Method", "tools/list"}, mcpgo.HEADER_MISMATCH},
			{"content type", `[` + toolsList + `]`, []string{"Content-Type", "text/plain"}, mcpgo.INVALID_REQUEST},
		} {
			resp, body := post(t, acme, admin, tc.body, tc.header...)
			if a := decodeAnswer(t, body); resp.StatusCode != http.StatusBadRequest || a.Error == nil || a.Error.Code != tc.code ||
				resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d %s, want 400 with JSON-RPC error %d", tc.name, resp.StatusCode, body, tc.code)
			}
		}
	})
	t.Run("a tool_error tenant answers the call inside the batch", func(t *testing.T) {
		b.reconfigure(t, toolErrorTenant)
		resp, body := post(t, acme, reader, `[`+toolCall(todo.ToolCreateTodo)+`]`)
		var answers []rpcAnswer
		if err := json.Unmarshal([]byte(body), &answers); err != nil || resp.StatusCode != http.StatusOK || len(answers) != 1 ||
			answers[0].Result == nil || !answers[0].Result.IsError {
			t.Errorf("tool_error batch: %d %s, want one tool error", resp.StatusCode, body)
		}
	})
}

// mcp-go's plain-text refusals reach the client as JSON-RPC errors with the
// request's id and the same status.
func TestTransportRefusalsAreJSON(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.token("acme", "u", adminPerms...)
	for _, tc := range []struct {
		name   string
		header []string
		want   string
	}{
		{"content type", []string{"Content-Type", "text/plain"}, "Invalid content type"},
		{"protocol version", []string{"Mcp-Protocol-Version", "1999-01-01"}, "Unsupported protocol version"},
	} {
		resp, body := post(t, b.resources["acme"], tok, toolsList, tc.header...)
		a := decodeAnswer(t, body)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" ||
			a.ID != float64(1) || a.Error == nil || a.Error.Code != mcpgo.INVALID_REQUEST || !strings.Contains(a.Error.Message, tc.want) {
			t.Errorf("%s: %d %q %s, want 400 JSON-RPC -32600 for id 1 saying %q", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want)
		}
	}
}

// A URL that differs from a tenant's only by a trailing slash, the case of
// its path or the loopback name gets a 404 naming the tenant's URL.
func TestNotFoundNamesTheTenantMeant(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"] // http://127.0.0.1:PORT/acme
	port := strings.TrimPrefix(b.URL, "http://127.0.0.1:")
	for _, tc := range []struct {
		name, url, host, want string
	}{
		{"trailing slash", acme + "/", "", acme},
		{"case", b.URL + "/ACME", "", acme},
		{"localhost for 127.0.0.1", acme, "localhost:" + port, acme},
		{"metadata with a trailing slash", b.URL + "/.well-known/oauth-protected-resource/acme/", "", b.URL + "/.well-known/oauth-protected-resource/acme"},
	} {
		req := request(t, http.MethodPost, tc.url, toolsList, "Content-Type", "application/json", "Host", tc.host)
		if strings.Contains(tc.url, "well-known") {
			req = request(t, http.MethodGet, tc.url, "", "Host", tc.host)
		}
		resp, body := send(t, req)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error":"not_found"`) || !strings.Contains(body, "did you mean "+tc.want+"?") {
			t.Errorf("%s: %d %s, want 404 naming %s", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	if resp, body := post(t, b.URL+"/nope", "", toolsList); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "did you mean") {
		t.Errorf("a URL near no tenant: %d %s, want a 404 without a guess", resp.StatusCode, body)
	}
}

// get-todos' output schema declares todos a plain array (it is never null);
// createdAt has three fractional digits.
func TestOutputShapes(t *testing.T) {
	b := newEdgeBed(t, nil)
	c := connect(t, b.resources["acme"], b.token("acme", "u", adminPerms...), "2025-11-25")
	res, err := c.ListTools(t.Context(), mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if tool.Name != todo.ToolGetTodos {
			continue
		}
		todos, _ := tool.OutputSchema.Properties["todos"].(map[string]any)
		if todos["type"] != "array" {
			t.Errorf("get-todos' output schema has todos of type %v, want \"array\"", todos["type"])
		}
	}
	text, isErr := call(t, c, todo.ToolCreateTodo, map[string]any{"content": "x"})
	if isErr || !regexp.MustCompile(`"createdAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`).MatchString(text) {
		t.Errorf("create-todo answered %s, want createdAt with three fractional digits", text)
	}
}

// A body that is no JSON-RPC message is refused with the JSON-RPC error
// that says so, by the todo server and an upstream tenant alike: -32700
// only for bytes that are not JSON, -32600 for JSON that is no message
// object, and for an object with an id and neither a method nor a result
// (mcp-go answered it 202 with no body, and the client waited forever).
// A response and a notification are still 202. A body in a charset other
// than UTF-8 is 415.
func TestMessagesThatAreNoJSONRPC(t *testing.T) {
	b := newEdgeBed(t, withSigner(t))
	notes := b.addUpstreamTenant(t, newNotesServer(t), notesServerBlock, "challenge")
	targets := map[string]string{
		"todo":     b.resources["acme"],
		"upstream": notes,
	}
	tokens := map[string]string{
		"todo":     b.token("acme", "u", adminPerms...),
		"upstream": b.token("notes", "u", notesWriter...),
	}
	for name, url := range targets {
		tok := tokens[name]
		for _, tc := range []struct {
			what, body string
			code       int
			id         any
		}{
			{"bytes that are not JSON", `{not json`, mcpgo.PARSE_ERROR, nil},
			{"a number", `42`, mcpgo.INVALID_REQUEST, nil},
			{"a string", `"{not json"`, mcpgo.INVALID_REQUEST, nil},
			{"an id and nothing else", `{"jsonrpc":"2.0","id":1}`, mcpgo.INVALID_REQUEST, float64(1)},
			{"an empty method", `{"jsonrpc":"2.0","id":"x","method":""}`, mcpgo.INVALID_REQUEST, "x"},
			{"a method that is no string", `{"jsonrpc":"2.0","id":2,"method":5}`, mcpgo.INVALID_REQUEST, float64(2)},
		} {
			resp, body := post(t, url, tok, tc.body)
			a := decodeAnswer(t, body)
			if resp.StatusCode != http.StatusBadRequest || a.Error == nil || a.Error.Code != tc.code || a.ID != tc.id {
				t.Errorf("%s, %s: %d %s, want 400 with JSON-RPC error %d for id %v", name, tc.what, resp.StatusCode, body, tc.code, tc.id)
			}
		}
		resp, body := post(t, url, tok, toolsList, "Content-Type", "application/json; charset=utf-16")
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, "unsupported_charset") {
			t.Errorf("%s, charset=utf-16: %d %s, want 415", name, resp.StatusCode, body)
		}
	}
	// (The upstream is stateful: without a session it refuses these itself.)
	for _, msg := range []string{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{"jsonrpc":"2.0","id":1,"result":{}}`} {
		if resp, body := post(t, targets["todo"], tokens["todo"], msg); resp.StatusCode != http.StatusAccepted {
			t.Errorf("todo, %s: %d %s, want 202", msg, resp.StatusCode, body)
		}
	}
	if resp, body := post(t, targets["todo"], tokens["todo"], toolsList, "Content-Type", "application/json; charset=UTF-8"); resp.StatusCode != http.StatusOK {
		t.Errorf("todo, charset=UTF-8: %d %s, want 200", resp.StatusCode, body)
	}
	// Inside a batch, the message is answered with the error and the rest run.
	resp, body := post(t, b.resources["acme"], tokens["todo"], `[{"jsonrpc":"2.0","id":7},`+toolsList+`]`)
	var answers []rpcAnswer
	if err := json.Unmarshal([]byte(body), &answers); err != nil || resp.StatusCode != http.StatusOK || len(answers) != 2 ||
		answers[0].Error == nil || answers[0].Error.Code != mcpgo.INVALID_REQUEST || answers[0].ID != float64(7) || answers[1].Result == nil {
		t.Errorf("a batch with an id-only member: %d %s, want -32600 for id 7 and the list", resp.StatusCode, body)
	}
}

// A 2026-07-28 subscriptions/listen on the todo server is answered on an
// SSE stream whose first frame is notifications/subscriptions/acknowledged
// (SEP-2575; the conformance suite checks it) with the subscriptions
// established, none since the server's lists never change, and then the
// result; both are tagged with the subscription's id (issue 24: the
// result came alone, as one JSON body).
func TestSubscriptionsListenIsAcknowledged(t *testing.T) {
	b := newEdgeBed(t, nil)
	body := `{"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	resp, got := post(t, b.resources["acme"], b.token("acme", "u", adminPerms...), body,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "subscriptions/listen")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("subscriptions/listen: %d %q %s, want 200 and an SSE stream", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	var frames []map[string]any
	for line := range strings.Lines(got) {
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok && strings.TrimSpace(data) != "" {
			var f map[string]any
			if err := json.Unmarshal([]byte(data), &f); err != nil {
				t.Fatalf("a frame that is not JSON: %q", data)
			}
			frames = append(frames, f)
		}
	}
	if len(frames) != 2 || frames[0]["method"] != "notifications/subscriptions/acknowledged" || frames[1]["id"] != "sub-1" {
		t.Fatalf("frames %v, want the acknowledgement, then the result", frames)
	}
	ackParams, _ := frames[0]["params"].(map[string]any)
	result, _ := frames[1]["result"].(map[string]any)
	for what, m := range map[string]map[string]any{"acknowledgement": ackParams, "result": result} {
		meta, _ := m["_meta"].(map[string]any)
		if meta["io.modelcontextprotocol/subscriptionId"] != "sub-1" {
			t.Errorf("the %s is not tagged with the subscription's id: %v", what, m)
		}
	}
	if n, _ := ackParams["notifications"].(map[string]any); len(n) != 0 {
		t.Errorf("acknowledged %v, want nothing established: the todo server's lists never change", n)
	}
}
