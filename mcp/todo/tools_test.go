package todo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// testTools are tools of tenant acme, without a store, that log to logs and
// take every request for the one with id rid.
func testTools(logs io.Writer, rid string) *todoTools {
	return &todoTools{tenant: "acme", log: slog.New(slog.NewJSONHandler(logs, nil)),
		requestID: func(context.Context) string { return rid },
		toolError: func(string) {}, bound: func(s string) string { return s }}
}

// A panicking tool answers a generic tool error naming the request id and
// logs the cause; the client never sees the panic's text.
func TestToolPanicIsGeneric(t *testing.T) {
	var logs bytes.Buffer
	tt := testTools(&logs, "req-42")
	h := tt.authenticated("boom-tool", func(context.Context, mcpgo.CallToolRequest, *providers.Principal) (*mcpgo.CallToolResult, error) {
		panic("secret internal detail")
	})
	res, err := h(WithPrincipal(context.Background(), principal("u")), mcpgo.CallToolRequest{})
	if err != nil || res == nil || !res.IsError {
		t.Fatalf("got %v, %v; want a tool error", res, err)
	}
	text := res.Content[0].(mcpgo.TextContent).Text
	if strings.Contains(text, "secret") || !strings.Contains(text, "req-42") {
		t.Errorf("client sees %q: want a generic message with the request id", text)
	}
	if !strings.Contains(logs.String(), "secret internal detail") || !strings.Contains(logs.String(), "req-42") {
		t.Errorf("log lacks the cause or the request id: %s", logs.String())
	}
}

func TestToolWithoutPrincipalIsRefused(t *testing.T) {
	tt := testTools(io.Discard, "")
	ran := false
	h := tt.authenticated("t", func(context.Context, mcpgo.CallToolRequest, *providers.Principal) (*mcpgo.CallToolResult, error) {
		ran = true
		return nil, nil
	})
	res, err := h(context.Background(), mcpgo.CallToolRequest{})
	if ran || err != nil || !res.IsError {
		t.Errorf("without a principal: ran %v, result %v, err %v; want refused", ran, res, err)
	}
}

// A store that cannot answer is answered as retryable, saying that the
// write may or may not have happened, with the request id; the cause is
// logged. Other failures stay generic.
func TestStoreUnavailableAsksForARetry(t *testing.T) {
	var logs bytes.Buffer
	tt := testTools(&logs, "req-7")
	ctx := context.Background()
	err := fmt.Errorf("create todo: %w: %w", store.ErrUnavailable, errors.New("etcdserver: request timed out"))
	for _, generic := range []string{"", deleteFailed} {
		res := tt.failure(ctx, ToolCreateTodo, err, generic)
		text := res.Content[0].(mcpgo.TextContent).Text
		if !res.IsError || text != "the todo store is temporarily unavailable; retry later (the todo may or may not have been created; request req-7)" {
			t.Errorf("got %q, want a retryable answer with the request id and without the cause", text)
		}
	}
	res := tt.failure(ctx, ToolGetTodos, err, "")
	if text := res.Content[0].(mcpgo.TextContent).Text; text != "the todo store is temporarily unavailable; retry later (request req-7)" {
		t.Errorf("get-todos got %q, want the retryable answer without a doubt about a write", text)
	}
	if !strings.Contains(logs.String(), "etcdserver: request timed out") {
		t.Errorf("the cause is not logged: %s", logs.String())
	}
	res = tt.failure(ctx, ToolCreateTodo, errors.New("disk I/O error"), "")
	if text := res.Content[0].(mcpgo.TextContent).Text; strings.Contains(text, "retry") || strings.Contains(text, "disk") {
		t.Errorf("another failure answered %q, want the generic internal error", text)
	}
	if got := StoreOutcome(err); got != "unavailable" {
		t.Errorf("StoreOutcome got %q, want unavailable", got)
	}
	// An etcd timeout is both unavailable and a deadline: unavailable wins.
	timeout := fmt.Errorf("list todos: %w: %w", store.ErrUnavailable, context.DeadlineExceeded)
	if got := StoreOutcome(timeout); got != "unavailable" {
		t.Errorf("StoreOutcome of an etcd timeout got %q, want unavailable", got)
	}
	// A client that went away is neither a failure nor logged as one.
	logs.Reset()
	gone := fmt.Errorf("list todos: %w", context.Canceled)
	if got := StoreOutcome(gone); got != "canceled" {
		t.Errorf("StoreOutcome of a canceled call got %q, want canceled", got)
	}
	tt.failure(ctx, ToolGetTodos, gone, "")
	if logs.Len() != 0 {
		t.Errorf("a canceled call was logged as a failure: %s", logs.String())
	}
}
