package todo

import (
	"bytes"
	"context"
	stdjson "encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// A handler that fails (an error, a panic, no result) or answers more than
// text, or odd bytes, is answered by the fast path as mcp-go answers it,
// byte for byte. The gateway's tools never do: these stand-ins carry their
// names. (The tools' own answers are compared with mcp-go's through the
// whole edge by FuzzFastPath, in package mcp.)
func TestFastPathHandlerOutcomes(t *testing.T) {
	structured := map[string]any{"a": "<b>", "n": 1.5}
	outcomes := map[string]server.ToolHandlerFunc{
		"error": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return nil, errors.New("boom <&>")
		},
		"panic": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			panic("kaput")
		},
		"nil": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return nil, nil
		},
		"elicitation": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return nil, mcpgo.URLElicitationRequiredError{Elicitations: []mcpgo.ElicitationParams{{Mode: "url", Message: "go", URL: "https://x.example/", ElicitationID: "e1"}}}
		},
		"rich": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return &mcpgo.CallToolResult{
				Result:            mcpgo.Result{Meta: &mcpgo.Meta{AdditionalFields: map[string]any{"k": "v"}}},
				Content:           []mcpgo.Content{mcpgo.NewTextContent("t"), mcpgo.NewImageContent("aGk=", "image/png")},
				StructuredContent: structured,
			}, nil
		},
		"empty": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return &mcpgo.CallToolResult{}, nil
		},
		"invalid-structured": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return &mcpgo.CallToolResult{RawStructuredContent: []byte(`{"a":`)}, nil
		},
		"odd-structured": func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return &mcpgo.CallToolResult{IsError: true, Content: []mcpgo.Content{mcpgo.NewTextContent("bad \xff <\u2028>")},
				RawStructuredContent: []byte(" {\"a\" : 1, \"a\": \"\xff<\u2029>\", \"b\":[ 1.50, 1e2, \"\\u0041\\/\\ud800\" ]} ")}, nil
		},
		"args": func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			// What the handler is given: the arguments, both forms, the
			// headers, the method.
			b, _ := stdjson.Marshal(map[string]any{
				"args": req.GetArguments(), "raw": string(req.Params.RawArguments), "nilArgs": req.Params.Arguments == nil,
				"method": req.Method, "name": req.Params.Name, "ua": req.Header.Get("User-Agent"), "meta": req.Params.Meta != nil,
			})
			return mcpgo.NewToolResultText(string(b)), nil
		},
	}
	for outcome, h := range outcomes {
		s := server.NewMCPServer("outcomes", "1", server.WithToolCapabilities(false), server.WithRecovery())
		for _, tool := range Tools {
			s.AddTool(mcpgo.NewTool(tool.Name), h)
		}
		fast := newFastTools(s)
		oracle := server.NewStreamableHTTPServer(s, server.WithStateLess(true), server.WithDisableStreaming(true),
			server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)))
		for _, body := range []string{
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{"a":[1,{"b":null}],"c":"\u00e9"}}}`,
			`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"create-todo"}}`,
			`{"jsonrpc":"2.0","id":2.5,"method":"tools/call","params":{"name":"delete-todo","arguments":{}}}`,
		} {
			h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"ua/1"}}
			c, ok := fast.parse(h, []byte(body))
			if !ok {
				t.Fatalf("%s: not on the fast path", body)
			}
			want := httptest.NewRecorder()
			oracle.Handle(recorderWriter{want}, &server.HTTPRequest{Method: http.MethodPost, Header: h, Body: []byte(body), Context: context.Background()})
			got := httptest.NewRecorder()
			fast.serve(got, context.Background(), h, c)
			if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("%s, %s: the fast path answered %d %v\n%q\nand mcp-go %d %v\n%q", outcome, body,
					got.Code, got.Header(), got.Body.Bytes(), want.Code, want.Header(), want.Body.Bytes())
			}
		}
	}
}

// recorderWriter is a ResponseRecorder as mcp-go's Handle writes to it.
type recorderWriter struct{ *httptest.ResponseRecorder }

func (recorderWriter) CanStream() bool { return false }
func (recorderWriter) Flush()          {}

// newFastTools is the fast path over the handlers registered with s, for
// tests that register handlers of their own (New builds a server's fast
// path from newToolHandlers); nil if s lacks one of Tools.
func newFastTools(s *server.MCPServer) *fastTools {
	f := &fastTools{handlers: make([]server.ToolHandlerFunc, len(Tools))}
	for i := range Tools {
		st := s.GetTool(Tools[i].Name)
		if st == nil || st.Handler == nil {
			return nil
		}
		f.handlers[i] = st.Handler
	}
	return f
}
