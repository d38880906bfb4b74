package mcp

import "testing"

// The derived cap keeps a quarter of the file limit, at least 64, for
// everything that is not a client connection.
func TestConnectionsFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{1024, 768},
		{20000, 15000},
		{256, 192},
		{100, 36},
		{50, 25},
		{1, 1},
		{1 << 40, 3 << 18}, // unlimited: capped at 1<<20 first
	} {
		if got := connectionsFor(tc.nofile); got != tc.want {
			t.Errorf("connectionsFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
	if n := DefaultMaxConnections(); n < 1 {
		t.Errorf("DefaultMaxConnections() = %d", n)
	}
}
