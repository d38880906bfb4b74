package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/todo-gateway/todo-gateway/bench"
	"github.com/todo-gateway/todo-gateway/providers/providertest"
)

// BenchmarkUpstreamProxy measures one tool call to the bench's bare
// mcp-go server over loopback: directly (the baseline), then through an
// upstream tenant of the gateway (the caller's token verified from the
// cache, the tool's permission checked, the assertion attached). The
// difference is what the gateway adds, client and upstream included in
// both; the wrk test measures the same with processes of their own.
func BenchmarkUpstreamProxy(b *testing.B) {
	up := httptest.NewServer(bench.Upstream())
	b.Cleanup(up.Close)
	iss := providertest.New(b)
	gb := startBed(b, bedSpec{log: io.Discard, tenants: []bedTenant{{id: "up", fields: fmt.Sprintf(`"provider": {"type": "oidc", "issuer": %q}, "audience": {"strategy": "resource"},
		"server": {"type": "upstream", "url": %q, "identity": {"mode": "assertion"}, "permissions": {"tools": {"echo": ["bench:call"]}}}`, iss.Issuer(), up.URL+"/mcp")}}})
	resource := gb.resources["up"]
	caller := iss.Mint(iss.Claims("bench-caller", resource, "bench:call"))
	const body = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	call := func(b *testing.B, url string) {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+caller)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), "hello") {
			b.Fatalf("%s: %d %s %v", url, resp.StatusCode, answer, err)
		}
	}
	for _, target := range []struct{ name, url string }{{"direct", up.URL + "/mcp"}, {"via-gateway", resource}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				call(b, target.url)
			}
		})
	}
}
