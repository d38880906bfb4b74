package mcp_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// What an attack run from outside tried without finding anything, kept so
// that it stays that way. Each answer is a clear refusal: never a 5xx, a
// panic or an ERROR line.

// wantNoFailure checks that nothing failed on the gateway's side.
func wantNoFailure(t *testing.T, b *edgeBed, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	if !json.Valid([]byte(body)) && (resp.StatusCode != http.StatusAccepted || body != "") {
		t.Errorf("the answer is not JSON: %.200s", body)
	}
	if logs := b.logs(t); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("an ERROR line:\n%.2000s", logs)
	}
}

// JSON nested 10,000 deep, wherever it is put, is refused as a parse error
// or an invalid request.
func TestDeeplyNestedJSON(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.token("acme", "u", adminPerms...)
	const depth = 10000
	arrays := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	objects := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	for name, body := range map[string]string{
		"arrays (a batch)":  arrays,
		"objects":           objects,
		"in the arguments":  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":` + objects + `}}`,
		"in the params":     `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":` + objects + `}`,
		"in the id":         `{"jsonrpc":"2.0","id":` + arrays + `,"method":"tools/list"}`,
		"in a batch member": `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":` + objects + `}}]`,
	} {
		t.Run(name, func(t *testing.T) {
			resp, out := post(t, b.resources["acme"], tok, body)
			wantNoFailure(t, b, resp, out)
			if resp.StatusCode == http.StatusOK && !strings.Contains(out, `"error"`) && !strings.Contains(out, `"isError":true`) {
				t.Errorf("accepted: %d %.300s", resp.StatusCode, out)
			}
		})
	}
	if resp, body := post(t, b.resources["acme"], tok, toolsList); resp.StatusCode != http.StatusOK {
		t.Errorf("the next request: %d %s", resp.StatusCode, body)
	}
}

// A batch (2025-03-26) is checked message by message before any runs: one
// call the token lacks the permission for refuses the whole batch, even
// behind calls it may make; with every permission, a batch of mixed tools
// runs each.
func TestBatchOfMixedTools(t *testing.T) {
	b := newEdgeBed(t, nil)
	acme := b.resources["acme"]
	owner := connect(t, acme, b.token("acme", "reader", userPerms...), "")
	mine := createTodo(t, owner, "keep me")
	reader := b.token("acme", "reader", readerPerms...)
	del := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete-todo","arguments":{"id":"` + mine.ID + `"}}}`
	get := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-todos"}}`
	create := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create-todo","arguments":{"content":"smuggled"}}}`

	// The reader may delete its own todo and list, but not create.
	resp, body := post(t, acme, reader, "["+del+","+get+","+create+"]")
	wantChallenge(t, resp, body, http.StatusForbidden, `error="insufficient_scope"`)
	if got := listTodos(t, connect(t, acme, b.token("acme", "admin", adminPerms...), "")); len(got) != 1 || got[0].ID != mine.ID || got[0].Content != "keep me" {
		t.Fatalf("after the refused batch: %+v, want only %q, untouched", got, mine.ID)
	}

	resp, body = post(t, acme, b.token("acme", "admin", adminPerms...), "["+create+","+get+","+del+"]")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("an admin's batch: %d %s", resp.StatusCode, body)
	}
	var answers []map[string]any
	if err := json.Unmarshal([]byte(body), &answers); err != nil || len(answers) != 3 {
		t.Fatalf("an admin's batch: %v, want 3 answers: %s", err, body)
	}
	for _, a := range answers {
		if res, _ := a["result"].(map[string]any); res == nil || res["isError"] == true {
			t.Errorf("answer %v: want a result", a)
		}
	}
}

// An empty method fails nothing. (mcp-go takes a message with an id and
// an empty method for a response and answers 202 without a body; in a
// batch, the other messages are answered.)
func TestEmptyMethod(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.token("acme", "u", adminPerms...)
	resp, out := post(t, b.resources["acme"], tok, `{"jsonrpc":"2.0","id":1,"method":""}`)
	wantNoFailure(t, b, resp, out)
	if resp.StatusCode != http.StatusAccepted && !strings.Contains(out, `"id":1,"error":{"code":`) {
		t.Errorf("alone: %d %s, want 202 or a JSON-RPC error", resp.StatusCode, out)
	}
	resp, out = post(t, b.resources["acme"], tok, `[{"jsonrpc":"2.0","id":1,"method":""},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`)
	wantNoFailure(t, b, resp, out)
	if resp.StatusCode != http.StatusOK || !strings.Contains(out, `"id":2,"result":{"tools":`) {
		t.Errorf("in a batch: %d %.300s, want the other message answered", resp.StatusCode, out)
	}
}

// A compressed body is refused with 415 before it is read, not parsed as
// garbage; identity is no compression.
func TestCompressedBodyIsRefused(t *testing.T) {
	b := newEdgeBed(t, nil)
	tok := b.token("acme", "u", adminPerms...)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(toolsList))
	w.Close()
	for _, enc := range []string{"gzip", "deflate", "br", "gzip, identity"} {
		resp, body := post(t, b.resources["acme"], tok, gz.String(), "Content-Encoding", enc)
		if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(body, `"error":"unsupported_content_encoding"`) {
			t.Errorf("Content-Encoding %s: %d %s, want a JSON 415", enc, resp.StatusCode, body)
		}
	}
	if resp, body := post(t, b.resources["acme"], tok, toolsList, "Content-Encoding", "identity"); resp.StatusCode != http.StatusOK {
		t.Errorf("Content-Encoding identity: %d %s, want 200", resp.StatusCode, body)
	}
	// Before the token: nothing about the body matters to a caller without one.
	if resp, _ := post(t, b.resources["acme"], "", gz.String(), "Content-Encoding", "gzip"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("gzip without a token: %d, want 401", resp.StatusCode)
	}
}
