package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/todo-gateway/todo-gateway/providers/providertest"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
)

// otlpReceiver is an OTLP/HTTP trace receiver, as a collector is: it
// decodes what the gateway exports with the protocol's own messages.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *otlpReceiver) all() []*tracepb.Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*tracepb.Span(nil), rc.spans...)
}

// spanAttr is a string attribute of s, "" when it has none.
func spanAttr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, a get-todos whose client sent a
// W3C traceparent is a server span in the client's trace, named for the
// call and marked with the tenant and the decision, with the token's
// verification and the store's list as its children; the issuer's
// discovery and keys are client spans; the access and audit lines name the
// trace, and the verification's latency carries it as an exemplar; a
// refused token's span says deny; a trace context in a message's _meta
// (and none in the headers) is a link of the request's span; a store that
// fails makes its operation's span an error. Without the variables there is
// no tracing (every other test).
func TestTracingExportsTheRequestTree(t *testing.T) {
	rc := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	t.Setenv("OTEL_SERVICE_NAME", "gateway-under-test")
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{onIssuer("t0", "oidc", iss.Issuer())}})
	if b.gw.tracing == nil {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tok := iss.Mint(iss.Claims("alice", b.resources["t0"], "read:todos"))
	resp := post(t, b.resources["t0"], tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":{}}}`,
		map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("get-todos: %d %s", resp.StatusCode, body)
	}
	refused := post(t, b.resources["t0"], "not-a-token", toolsList, nil)
	readAll(t, refused)
	// A trace context in the message's _meta, none in the headers: the
	// request's span links to it.
	const metaTraceID = "0af7651916cd43dd8448eb211c80319c"
	resp = post(t, b.resources["t0"], tok, `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"traceparent":"00-`+metaTraceID+`-b7ad6b7169203331-01"}}}`, nil)
	readAll(t, resp)
	// A create: its store span holds the wait for its bbolt commit.
	writer := iss.Mint(iss.Claims("bob", b.resources["t0"], "create:todos"))
	if text, isErr := callTool(t, b.resources["t0"], writer, "create-todo", map[string]any{"content": "x"}); isErr {
		t.Fatalf("create-todo: %s", text)
	}
	// A store that fails: the create's store span is an error.
	b.gw.store.Close()
	if text, isErr := callTool(t, b.resources["t0"], writer, "create-todo", map[string]any{"content": "x"}); !isErr {
		t.Fatalf("create-todo with the store closed: %s, want a tool error", text)
	}
	// The batch is sent within the schedule delay; the shutdown at the
	// end of the test would send the rest.
	var spans []*tracepb.Span
	find := func(name string) *tracepb.Span {
		for _, s := range spans {
			if s.Name == name {
				return s
			}
		}
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for spans = rc.all(); (find("tools/call get-todos") == nil || find("store list") == nil || find("tools/list") == nil || find("bbolt commit") == nil || countSpans(spans, "store create") < 2) && time.Now().Before(deadline); spans = rc.all() {
		time.Sleep(20 * time.Millisecond)
	}
	server := find("tools/call get-todos")
	if server == nil {
		t.Fatalf("no server span named tools/call get-todos among %d spans", len(spans))
	}
	if got := hex.EncodeToString(server.TraceId); got != traceID || hex.EncodeToString(server.ParentSpanId) != parentID || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span in trace %s under %x (kind %v), want the client's trace %s under %s", got, server.ParentSpanId, server.Kind, traceID, parentID)
	}
	for key, want := range map[string]string{"todo_gateway.tenant": "t0", "todo_gateway.decision": "allow", "mcp.method.name": "tools/call", "gen_ai.tool.name": "get-todos"} {
		if got := spanAttr(server, key); got != want {
			t.Errorf("server span %s = %q, want %q", key, got, want)
		}
	}
	for _, name := range []string{"verify token", "store list"} {
		child := find(name)
		if child == nil {
			t.Errorf("no %q span", name)
			continue
		}
		if string(child.ParentSpanId) != string(server.SpanId) {
			t.Errorf("%q is not a child of the request's span", name)
		}
	}
	var issuerCalls int
	for _, s := range spans {
		if s.Kind == tracepb.Span_SPAN_KIND_CLIENT && strings.Contains(spanAttr(s, "url.full"), strings.TrimPrefix(iss.URL(), "http://")) {
			issuerCalls++
		}
	}
	if issuerCalls == 0 {
		t.Error("no client span for the issuer's discovery or keys")
	}
	var creates, failedCreates int
	for _, s := range spans {
		if s.Name != "store create" {
			continue
		}
		creates++
		if s.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			failedCreates++
		}
		for _, c := range spans {
			if c.Name == "bbolt commit" && string(c.ParentSpanId) == string(s.SpanId) {
				creates += 10 // the successful one's commit, under it
			}
		}
	}
	if creates != 12 || failedCreates != 1 {
		t.Errorf("store create spans: %d (+10 for a bbolt commit under one), %d failed; want 2 with a commit under one, 1 failed", creates, failedCreates)
	}
	linked := false
	for _, s := range spans {
		for _, l := range s.Links {
			if hex.EncodeToString(l.TraceId) == metaTraceID && s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				linked = true
			}
		}
	}
	if !linked {
		t.Error("no server span links to the trace context of the message's _meta")
	}
	denied := false
	for _, s := range spans {
		if spanAttr(s, "todo_gateway.decision") == "deny" && s.Kind == tracepb.Span_SPAN_KIND_SERVER {
			denied = true
		}
	}
	if !denied {
		t.Error("no server span with the refused token's deny")
	}
	// The latency histograms (verification, store operations) carry
	// sampled requests' traces as exemplars, for a scraper that asks for
	// OpenMetrics. A bucket keeps its latest exemplar, so any trace this
	// test made may be the one shown; it must be one the receiver got.
	traces := map[string]bool{}
	for _, s := range spans {
		traces[hex.EncodeToString(s.TraceId)] = true
	}
	req := mustRequest(t, http.MethodGet, "http://"+b.gw.AdminAddr()+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	metrics := readAll(t, do(t, req))
	for _, histogram := range []string{"todo_gateway_token_verification_seconds", "todo_gateway_store_operation_seconds"} {
		exemplars := regexp.MustCompile(histogram+`_bucket\{[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})"\}`).FindAllStringSubmatch(metrics, -1)
		if len(exemplars) == 0 {
			t.Errorf("no exemplar naming a trace on %s", histogram)
		}
		for _, e := range exemplars {
			if !traces[e[1]] {
				t.Errorf("%s: exemplar trace %s is none of the exported traces", histogram, e[1])
			}
		}
	}
	if logs := b.logs.String(); !strings.Contains(logs, `"msg":"access"`) || !strings.Contains(logs, `"trace_id":"`+traceID+`"`) {
		t.Errorf("the access and audit lines do not name the trace %s:\n%s", traceID, logs)
	}
}

// grpcReceiver is an OTLP/gRPC trace receiver.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (g *grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			g.spans = append(g.spans, ss.Spans...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends the spans over gRPC.
func TestTracingOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &grpcReceiver{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, rc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	iss := providertest.New(t)
	b := startBed(t, bedSpec{tenants: []bedTenant{onIssuer("t0", "oidc", iss.Issuer())}})
	tok := iss.Mint(iss.Claims("alice", b.resources["t0"], "read:todos"))
	if text, isErr := callTool(t, b.resources["t0"], tok, "get-todos", nil); isErr {
		t.Fatalf("get-todos: %s", text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rc.mu.Lock()
		n := len(rc.spans)
		var named bool
		for _, s := range rc.spans {
			named = named || s.Name == "tools/call get-todos"
		}
		rc.mu.Unlock()
		if named {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span of the get-todos over gRPC within 5 s (%d spans)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The environment decides: tracing is off unless an endpoint or the otlp
// exporter is named, and OTEL_SDK_DISABLED or the none exporter turn it
// off whatever else is set.
func TestTracingWanted(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
	} {
		if got := tracingWanted(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: tracing %v, want %v", tc.env, got, tc.want)
		}
	}
}

func countSpans(spans []*tracepb.Span, name string) int {
	n := 0
	for _, s := range spans {
		if s.Name == name {
			n++
		}
	}
	return n
}

// On etcd, a read's wait for the cache to be fresh is a span of its own,
// and the etcd client's requests (a create's transaction) are gRPC client
// spans in the request's trace. (The cache's freshness checks are shared
// by the reads waiting, so they belong to none of their traces.)
func TestTracingOnEtcd(t *testing.T) {
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	rc := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	iss := providertest.New(t)
	storeBlock := fmt.Sprintf(`{"driver": "etcd", "etcd": {"endpoints": [%q], "prefix": "trace-test-%d/"}}`, member.Endpoint, time.Now().UnixNano())
	b := startBed(t, bedSpec{tenants: onIssuers(1, iss.Issuer()), store: storeBlock})
	tok := iss.Mint(iss.Claims("alice", b.resources["t0"], "create:todos read:todos"))
	if text, isErr := callTool(t, b.resources["t0"], tok, "create-todo", map[string]any{"content": "x"}); isErr {
		t.Fatalf("create-todo: %s", text)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if text, isErr := callTool(t, b.resources["t0"], tok, "get-todos", nil); isErr {
			t.Fatalf("get-todos: %s", text)
		}
		spans := rc.all()
		var list, wait, create *tracepb.Span
		grpcUnder := false
		for _, s := range spans {
			switch s.Name {
			case "store list":
				list = s
			case "etcd cache wait":
				wait = s
			case "store create":
				create = s
			}
		}
		for _, s := range spans {
			if strings.HasPrefix(s.Name, "etcdserverpb.") && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && create != nil && string(s.TraceId) == string(create.TraceId) {
				grpcUnder = true
			}
		}
		if list != nil && wait != nil && string(wait.ParentSpanId) == string(list.SpanId) && grpcUnder {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("within 10 s: store list %v, etcd cache wait under it %v, an etcd gRPC span in the create's trace %v (%d spans)", list != nil, wait != nil, grpcUnder, len(spans))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
