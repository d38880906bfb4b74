package mcp

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/todo-gateway/todo-gateway/providers"
)

// A panicking tool answers a generic tool error naming the request id and
// logs the cause; the client never sees the panic's text.
func TestToolPanicIsGeneric(t *testing.T) {
	var logs bytes.Buffer
	tt := &todoTools{tenant: "acme", log: slog.New(slog.NewJSONHandler(&logs, nil))}
	h := tt.authenticated("boom-tool", func(context.Context, mcpgo.CallToolRequest, *providers.Principal) (*mcpgo.CallToolResult, error) {
		panic("secret internal detail")
	})
	ctx := withRequestID(WithPrincipal(context.Background(), principal("u")), "req-42")
	res, err := h(ctx, mcpgo.CallToolRequest{})
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
	tt := &todoTools{tenant: "acme", log: slog.New(slog.DiscardHandler)}
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
