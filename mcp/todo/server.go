// Package todo is the gateway's built-in MCP server, the tutorial's todo
// manager: one Server per tenant over the tenant's space in the store. It
// owns the tool table (Tools: name, permission, handler, explanation), the
// tools' handlers and their ownership policy (CanListAll, CanDelete), how a
// store error is answered (StoreOutcome and its table), the fast path that
// answers a plain tools/call without mcp-go's generic JSON handling
// (fastpath.go), the tenant's mcp-go server for everything else, the
// record of how the tools' writes went (Writes) and the verified caller in
// a request's context (WithPrincipal).
//
// It knows nothing of tenants or the edge: the edge (package mcp) verifies
// the token, asks Requires what a call needs, decides, puts the principal
// in the context and hands each JSON-RPC message to Serve.
package todo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/store"
)

// Options are what a tenant's todo server is built from.
type Options struct {
	// Tenant is the tenant's id: its space in the store.
	Tenant string
	// Scope names a permission's scope string in the tenant's provider, for
	// the missing-permission tool error.
	Scope func(providers.Permission) string
	// Roles are the tenant's role or group grants (claims.roles), named in
	// the refusal of a call without its permission; nil for none.
	Roles *providers.RoleGrants
	// NotIssued says why the tenant's authorization server will not issue
	// a scope, or "" (providers.Provider.ScopeNotIssued), for the same
	// refusal; nil: nothing is known.
	NotIssued func(scope string) string
	// Store holds the todos; the tenant's space must exist
	// (store.Store.EnsureTenants).
	Store store.Store
	// Writes, when set, records how the tools' creates and deletes went.
	Writes *Writes
	// Logger receives a line for each tool call that failed (a refusal is
	// not a failure); default slog.Default().
	Logger *slog.Logger
	// LibraryLogger receives mcp-go's own lines (its transport's errors),
	// which may quote what a client sent; default Logger.
	LibraryLogger *slog.Logger
	// RequestID is the gateway's id of the request whose context it is:
	// a failure's answer and log line name it. Default: none.
	RequestID func(context.Context) string
	// ToolError, when set, is told of each call answered with a tool
	// error: one travels in an HTTP 200, and without a counter it would
	// look like a success.
	ToolError func(tool string)
	// Bound cuts a string that may hold what a client chose (an error's
	// text) to the size of a log line; default: unchanged.
	Bound func(string) string
	// MCPOnly answers every message with mcp-go, never with the fast path:
	// the oracle the fast path is compared with (FuzzFastPath).
	MCPOnly bool
}

// Server is one tenant's todo server. Everything it keeps is built when the
// server is, but for the mcp-go server, built on its first use.
type Server struct {
	tenant string
	// fast answers tools/call of Tools with the handlers the mcp-go server
	// registers, where mcp-go would answer the same (fastpath.go); nil
	// sends everything to mcp.
	fast *fastTools
	// mcp answers what the fast path does not (initialize, tools/list,
	// ping, anything unusual). It is built on its first such request:
	// building it (three AddTool with mcp-go's schema checks) for every
	// tenant at start was most of the start-up time and memory with
	// 10,000 tenants, most of which may never be called.
	mcp   func() *server.StreamableHTTPServer
	built atomic.Pointer[server.StreamableHTTPServer]
}

// Streams reports whether the answer to a request with these headers is
// an SSE stream: a 2026-07-28 subscriptions/listen, whose first frame is
// notifications/subscriptions/acknowledged (SEP-2575). Its Mcp-Method
// header names it; the edge has checked the header against the body.
// Every other answer is one JSON body.
func Streams(h http.Header) bool {
	return h.Get(mcpgo.HeaderMethod) == string(mcpgo.MethodSubscriptionsListen)
}

// New builds the todo server of one tenant. It makes no call to the store.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LibraryLogger == nil {
		o.LibraryLogger = o.Logger
	}
	if o.RequestID == nil {
		o.RequestID = func(context.Context) string { return "" }
	}
	if o.ToolError == nil {
		o.ToolError = func(string) {}
	}
	if o.NotIssued == nil {
		o.NotIssued = func(string) string { return "" }
	}
	if o.Bound == nil {
		o.Bound = func(s string) string { return s }
	}
	st := o.Store
	if o.Writes != nil {
		st = watchedStore{st, o.Writes}
	}
	handlers := newToolHandlers(&todoTools{tenant: o.Tenant, scope: o.Scope, roles: o.Roles, notIssued: o.NotIssued, store: st, log: o.Logger,
		requestID: o.RequestID, toolError: o.ToolError, bound: o.Bound})
	s := &Server{tenant: o.Tenant}
	if !o.MCPOnly {
		s.fast = &fastTools{handlers: handlers}
	}
	s.mcp = sync.OnceValue(func() *server.StreamableHTTPServer {
		srv := server.NewStreamableHTTPServer(newMCPServer(o.Tenant, handlers),
			server.WithStateLess(true),
			server.WithDisableStreaming(true),
			server.WithStreamableHTTPLogger(o.LibraryLogger),
			// Reached through Handle (Serve), which leaves CORS and the
			// loopback Host guard to the gateway: it validates Origin
			// itself and serves remote tenants by host name.
		)
		s.built.Store(srv)
		return srv
	})
	return s
}

// Tenant is the id of the tenant whose todos the server serves: the space
// it needs in the store.
func (s *Server) Tenant() string { return s.tenant }

// Requires is what a call needs before it may reach the server: its
// method, and the tool a tools/call names (Tools.Requires).
func (s *Server) Requires(method, tool string) (perms []providers.Permission, exposed bool) {
	return Tools.Requires(method, tool)
}

// HasTool reports whether name is one of Tools.
func (s *Server) HasTool(name string) bool {
	_, ok := Tools.named(name)
	return ok
}

// Methods are the HTTP methods the server takes. It is stateless and sends
// nothing of its own: there is nothing to GET, whoever asks.
func (s *Server) Methods() string { return "POST, DELETE, OPTIONS" }

// Read reads one JSON-RPC message as the fast path does: the Call it
// answers itself, or the zero Call, for a message mcp-go answers. The
// message is decoded once, here, for the edge's permission check and for
// Serve.
func (s *Server) Read(h http.Header, body []byte) Call {
	c, ok := s.fast.parse(h, body)
	c.fast = ok
	return c
}

// Serve answers one JSON-RPC message, body, whose reading is c (Read; the
// zero Call sends it to mcp-go), for the caller in ctx (WithPrincipal):
// the fast path when it took the message, else mcp-go's transport-agnostic
// entry point with the body already read. r gives the HTTP method, URL and
// headers; the checks ServeHTTP would add (CORS, the loopback Host guard,
// metadata) are the edge's. The answer is one application/json body, or
// mcp-go's plain-text refusal: the server's tools send no notifications,
// and w does not stream.
func (s *Server) Serve(ctx context.Context, w server.HTTPResponseWriter, r *http.Request, body []byte, c Call) {
	if c.fast {
		s.fast.serve(w, ctx, r.Header, c)
		return
	}
	req := &server.HTTPRequest{Method: r.Method, URL: r.URL, Header: r.Header, Body: body, Context: ctx}
	if Streams(r.Header) {
		s.listen(w, req)
		return
	}
	s.mcp().Handle(w, req)
}

// listen answers a subscriptions/listen. The todo server's lists never
// change (it declares no listChanged), so a subscription establishes
// nothing and the stream ends at once: the acknowledgement of the empty
// set, then the result, both tagged with the subscription's id. mcp-go
// checks the request and makes the result; the acknowledgement is written
// here, since mcp-go's own can lose the race with the result when the
// stream ends at once (its forwarder takes it off the queue, then finds
// the request done).
func (s *Server) listen(w server.HTTPResponseWriter, req *server.HTTPRequest) {
	rec := NewRecorder()
	s.mcp().Handle(rec, req)
	var answer struct {
		ID     any             `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if rec.Status() != http.StatusOK || json.Unmarshal(rec.Body(), &answer) != nil || answer.Result == nil || !w.CanStream() {
		rec.Replay(w) // a refusal, an error: as mcp-go wrote it
		return
	}
	ack, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": string(mcpgo.MethodNotificationSubscriptionsAcknowledged),
		"params": map[string]any{"notifications": map[string]any{}, "_meta": map[string]any{mcpgo.MetaKeySubscriptionID: answer.ID}}})
	if err != nil {
		rec.Replay(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for _, frame := range [][]byte{ack, bytes.TrimSpace(rec.Body())} {
		w.Write([]byte("event: message\ndata: "))
		w.Write(frame)
		w.Write([]byte("\n\n"))
		w.Flush()
	}
}

// Recorder keeps an answer of the server's whole instead of sending it,
// so that it can be looked at first (a subscriptions/listen's, a batch
// message's). It does not stream.
type Recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{header: http.Header{}} }

func (r *Recorder) Header() http.Header { return r.header }
func (r *Recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *Recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}
func (*Recorder) Flush()          {}
func (*Recorder) CanStream() bool { return false }

// Status is the answer's status; 0 when nothing was written.
func (r *Recorder) Status() int { return r.status }

// Body is the answer's body.
func (r *Recorder) Body() []byte { return r.body.Bytes() }

// Replay sends the kept answer to w as it was written.
func (r *Recorder) Replay(w server.HTTPResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(r.body.Bytes())
}

// Close shuts the mcp-go server, if it was ever built. Call it once no
// request uses the server.
func (s *Server) Close(ctx context.Context) error {
	if srv := s.built.Load(); srv != nil { // never built: nothing to stop
		return srv.Shutdown(ctx)
	}
	return nil
}
