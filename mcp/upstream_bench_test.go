package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/todo-gateway/todo-gateway/mcp"
)

// BenchmarkUpstreamCall is one tools/call through an upstream tenant
// (verification, permission, assertion, proxy) against a stateless mcp-go
// upstream in the same process, and the same call made directly: the
// difference is what the gateway adds. In-process, so the figures flatter
// both; bench/wrk_test.go measures from outside.
func BenchmarkUpstreamCall(b *testing.B) {
	s := server.NewMCPServer("echo", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("echo"), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithStateLess(true)))
	b.Cleanup(up.Close)
	t := &testing.T{}
	// The log buffered, as the binary buffers it (--log-flush): the
	// lines are formatted per call; the batched writes, a few per second
	// in the binary, are left out (io.Discard).
	logs := bufio.NewWriterSize(io.Discard, 64<<10)
	bed := newEdgeBed(t, func(o *mcp.Options) {
		withSigner(t)(o)
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	url := bed.addUpstreamTenant(t, &notesServer{URL: up.URL + "/mcp"},
		`{"type": "upstream", "url": "URL", "permissions": {"tools": {"echo": ["notes:read"]}}}`, "challenge")
	token := bed.token("notes", "rita", notesReader...)
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, target := range []struct{ name, url, token string }{{"direct", up.URL + "/mcp", ""}, {"gateway", url, token}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, target.url, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					if target.token != "" {
						req.Header.Set("Authorization", "Bearer "+target.token)
					}
					resp, err := client.Do(req)
					if err != nil {
						panic(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						panic(fmt.Sprint("status ", resp.StatusCode))
					}
				}
			})
		})
	}
}
