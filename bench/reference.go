// Package bench holds what the gateway's speed is measured against, and the
// measurement from outside (wrk_test.go, run by make bench): the reference
// servers answer a get-todos request with the gateway's own answer, so that
// what they cost is the floor of the HTTP stack (Bare) and of mcp-go
// (MCPAlone), and what the gateway costs beyond them is its own. Upstream
// is the MCP server behind an upstream tenant, measured directly and
// through the gateway (wrk_test.go, streams_test.go), and through the
// relays that are the floor of a gateway in front of it (RelayNetHTTP,
// RelayFastHTTP).
//
// Nothing here is part of the gateway binary; only tests import it.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/valyala/fasthttp"

	"github.com/todo-gateway/todo-gateway/mcp/upstream"
)

// Bare is the ceiling of the HTTP stack: a net/http handler that decodes
// the JSON-RPC request, as any JSON API would, and answers sample (a
// get-todos response body of the gateway) byte for byte, as
// application/json. No routing, middleware, MCP, token, store or log.
func Bare(sample []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Params  struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method == "" {
			http.Error(w, "not a JSON-RPC request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(sample)
	})
}

// MCPAlone is the floor of the MCP library: a stateless mcp-go server,
// configured as the gateway configures its own, whose get-todos answers the
// result in sample (a get-todos response of the gateway) with nothing else:
// no origin check, token, policy, store or logging. What it costs is
// mcp-go's; what the gateway costs beyond it is the gateway's.
func MCPAlone(sample []byte) (http.Handler, error) {
	var resp struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent json.RawMessage `json:"structuredContent"`
		} `json:"result"`
	}
	if err := json.Unmarshal(sample, &resp); err != nil {
		return nil, fmt.Errorf("not a get-todos result (%w): %s", err, sample)
	}
	if len(resp.Result.Content) != 1 {
		return nil, errors.New("not a get-todos result (one text content expected): " + string(sample))
	}
	text, structured := resp.Result.Content[0].Text, resp.Result.StructuredContent
	s := server.NewMCPServer("mcp-alone", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("get-todos"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return &mcpgo.CallToolResult{Content: []mcpgo.Content{mcpgo.NewTextContent(text)}, RawStructuredContent: structured}, nil
	})
	return server.NewStreamableHTTPServer(s,
		server.WithStateLess(true), server.WithDisableStreaming(true), server.WithDisableLocalhostProtection(true)), nil
}

// Upstream is the MCP server a team runs behind an upstream tenant, as the
// measurements run it: a stateless mcp-go Streamable HTTP server with
// mcp-go's defaults otherwise (streaming on), no authentication, and three
// tools:
//
//   - echo answers its text argument (what wrk calls);
//   - whoami answers the Authorization header it got, so that a test sees
//     the assertion the gateway attached;
//   - tick sends a progress notification at once and then every second,
//     which makes its answer an SSE stream, for its seconds argument
//     (default 60, at most 600) or until the client leaves, then answers
//     "done".
func Upstream() http.Handler {
	s := server.NewMCPServer("bench-upstream", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	s.AddTool(mcpgo.NewTool("whoami"), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.Header.Get("Authorization")), nil
	})
	s.AddTool(mcpgo.NewTool("tick", mcpgo.WithNumber("seconds")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		n := min(max(req.GetInt("seconds", 60), 1), 600)
		var token mcpgo.ProgressToken
		if req.Params.Meta != nil {
			token = req.Params.Meta.ProgressToken
		}
		srv := server.ServerFromContext(ctx)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 1; i <= n; i++ {
			if err := srv.SendNotificationToClient(ctx, "notifications/progress",
				map[string]any{"progressToken": token, "progress": i, "total": n}); err != nil {
				return nil, err
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return mcpgo.NewToolResultText("done"), nil
	})
	return server.NewStreamableHTTPServer(s, server.WithStateLess(true))
}

// RelayNetHTTP is the floor of a gateway in Go's net/http: a relay to the
// MCP server at target with nothing of a gateway's (no token, policy,
// identity or log), through httputil.ReverseProxy and http.Transport as
// an upstream tenant relays. Like the gateway it reads the request body
// before forwarding it (so the transport sends headers and body in one
// write) and copies answers through the gateway's own pooled buffers
// (upstream.CopyBuffers). What it costs beyond the upstream's is what
// relaying through net/http costs.
func RelayNetHTTP(target *url.URL) http.Handler {
	transport := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.Host = target.Path, target.RawPath, ""
		},
		BufferPool: upstream.CopyBuffers,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	})
}

// RelayFastHTTP is RelayNetHTTP with fasthttp's client in place of
// http.Transport, the server side still net/http: the request runs on the
// handler's goroutine, with none of the transport's hand-offs to a
// connection's reader and writer. It forwards the request's body and its
// content headers and answers the upstream's answer read whole, which is
// enough for a JSON answer (wrk's echo call) but would hold back an SSE
// stream: a measure of what another HTTP client costs, not a proxy.
func RelayFastHTTP(target *url.URL) http.Handler {
	client := &fasthttp.HostClient{Addr: target.Host, MaxConns: 256}
	uri := target.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		req.Header.SetMethod(r.Method)
		for _, name := range []string{"Content-Type", "Accept", "Mcp-Session-Id", "Mcp-Protocol-Version"} {
			if v := r.Header.Get(name); v != "" {
				req.Header.Set(name, v)
			}
		}
		req.SetBody(body)
		if err := client.Do(req, resp); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for _, name := range []string{"Content-Type", "Mcp-Session-Id"} {
			if v := resp.Header.Peek(name); len(v) > 0 {
				w.Header().Set(name, string(v))
			}
		}
		w.WriteHeader(resp.StatusCode())
		w.Write(resp.Body())
	})
}
