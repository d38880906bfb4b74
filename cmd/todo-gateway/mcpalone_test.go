package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// mcpAlone is the benchmarks' second reference: a stateless mcp-go server,
// configured as the gateway configures its own, whose get-todos answers the
// result in sample (a get-todos response of the gateway) with nothing else:
// no origin check, token, policy, store or logging. What it costs is mcp-go's;
// what the gateway costs beyond it is the gateway's.
func mcpAlone(t testing.TB, sample []byte) http.Handler {
	var resp struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent json.RawMessage `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(sample, &resp); err != nil || len(resp.Result.Content) != 1 {
		t.Fatalf("not a get-todos result (%v): %s", err, sample)
	}
	text, structured := resp.Result.Content[0].Text, resp.Result.StructuredContent
	s := server.NewMCPServer("mcp-alone", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("get-todos"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return &mcpgo.CallToolResult{Content: []mcpgo.Content{mcpgo.NewTextContent(text)}, RawStructuredContent: structured}, nil
	})
	return server.NewStreamableHTTPServer(s,
		server.WithStateLess(true), server.WithDisableStreaming(true), server.WithDisableLocalhostProtection(true))
}
