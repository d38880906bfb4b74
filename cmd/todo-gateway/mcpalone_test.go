package main

import (
	"net/http"
	"testing"

	"github.com/todo-gateway/todo-gateway/bench"
)

// mcpAlone is the benchmarks' second reference (bench.MCPAlone, the one the
// wrk benchmark runs too): a stateless mcp-go server whose get-todos answers
// the result in sample with nothing else around it.
func mcpAlone(t testing.TB, sample []byte) http.Handler {
	h, err := bench.MCPAlone(sample)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
