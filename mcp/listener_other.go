//go:build !unix

package mcp

// openFileLimit is unknown here: DefaultMaxConnections falls back to a
// fixed cap.
func openFileLimit() (uint64, bool) { return 0, false }
