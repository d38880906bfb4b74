package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// logLines are the edge's log lines so far, decoded, with msg.
func (b *edgeBed) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(b.logs(t), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// lineOf is the last line with msg whose request_id is id.
func (b *edgeBed) lineOf(t *testing.T, msg, id string) map[string]any {
	t.Helper()
	lines := b.logLines(t, msg)
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["request_id"] == id {
			return lines[i]
		}
	}
	t.Fatalf("no %s line with request_id %q in:\n%s", msg, id, b.logs(t))
	return nil
}

// The request id is the gateway's own, whatever X-Request-Id the client
// sends: a client can neither choose the id of an audit line nor make a
// line as long as its header. A short, plain client id is kept apart, for
// correlation.
func TestRequestIDIsTheGatewaysOwn(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]

	cases := []struct {
		name, sent, kept string
	}{
		{"short and plain: kept apart", "trace-0af7651916cd43dd8448eb211c80319c", "trace-0af7651916cd43dd8448eb211c80319c"},
		{"a UUID: kept apart", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"},
		{"60 KiB: dropped", strings.Repeat("r", 60<<10), ""},
		{"65 characters: dropped", strings.Repeat("a", 65), ""},
		{"a quote and spaces: dropped", `x" "decision":"allow`, ""},
	}
	ids := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, acme, "", toolsList, "X-Request-Id", tc.sent)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d %s, want 401", resp.StatusCode, body)
			}
			id := resp.Header.Get("X-Request-Id")
			if id == "" || id == tc.sent || len(id) > 64 || ids[id] {
				t.Fatalf("X-Request-Id answered %.80q, want a fresh id of the gateway's own (client sent %.80q)", id, tc.sent)
			}
			ids[id] = true
			access := b.lineOf(t, "access", id)
			if got, _ := access["client_request_id"].(string); got != tc.kept {
				t.Errorf("client_request_id %.80q, want %q", got, tc.kept)
			}
			b.lineOf(t, "audit", id)
			if strings.Contains(b.logs(t), strings.Repeat("r", 1024)) {
				t.Error("the long client id reached the log")
			}
		})
	}
}

// Every string a client chooses that reaches a log line (the tool name and
// method from the body, the path, the Host, the HTTP method) is bounded:
// no line grows with the request.
func TestClientStringsInLogsAreBounded(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]
	tok := b.token("acme", "u", adminPerms...)
	long := strings.Repeat("n", 100<<10)
	port := strings.TrimPrefix(b.URL, "http://127.0.0.1:")

	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"tool name", func() *http.Request {
			return request(t, http.MethodPost, acme, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+long+`"}}`,
				"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Authorization", bearer(tok))
		}},
		{"method", func() *http.Request {
			return request(t, http.MethodPost, acme, `{"jsonrpc":"2.0","id":1,"method":"`+long+`"}`,
				"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Authorization", bearer(tok))
		}},
		{"tool name in a batch", func() *http.Request {
			return request(t, http.MethodPost, acme, `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+long+`"}}]`,
				"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "Authorization", bearer(tok))
		}},
		{"path", func() *http.Request { return request(t, http.MethodPost, b.URL+"/"+long[:30<<10], toolsList) }},
		{"Host", func() *http.Request {
			return request(t, http.MethodPost, acme, toolsList, "Host", long[:30<<10]+".example:"+port)
		}},
		{"HTTP method", func() *http.Request { return request(t, strings.ToUpper(long[:30<<10]), acme, "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(b.logs(t))
			resp, _ := send(t, tc.req())
			id := resp.Header.Get("X-Request-Id")
			b.lineOf(t, "access", id)
			for _, line := range strings.Split(b.logs(t)[before:], "\n") {
				if len(line) > 2048 {
					t.Errorf("a log line of %d bytes: %.300s…", len(line), line)
				}
			}
		})
	}
}
