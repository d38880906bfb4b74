package mcp

import (
	"net/http"
	"testing"
)

// BenchmarkReadCalls: what reading one message costs an upstream tenant
// before it decides (a tools/call as the wrk test's echo row sends it).
func BenchmarkReadCalls(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello from the benchmark"},"_meta":{"progressToken":1}}}`)
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		if _, ch := readCalls(h, body); ch != nil {
			b.Fatal(ch.description)
		}
	}
}
