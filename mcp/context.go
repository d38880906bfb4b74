package mcp

import "context"

type ctxKey int

const requestIDKey ctxKey = iota

// requestIDs are a request's ids: the gateway's own, and the one its client
// sent, kept for correlation when it is short and plain (clientRequestID).
type requestIDs struct {
	own, client string
}

func withRequestIDs(ctx context.Context, ids requestIDs) context.Context {
	return context.WithValue(ctx, requestIDKey, ids)
}

// RequestIDFrom returns the request id the gateway gave the request, or "".
// It is never the client's: that one is ClientRequestIDFrom.
func RequestIDFrom(ctx context.Context) string {
	ids, _ := ctx.Value(requestIDKey).(requestIDs)
	return ids.own
}

// ClientRequestIDFrom returns the X-Request-Id the client sent, when it was
// kept (at most 64 characters of letters, digits and "-_.:"), or "".
func ClientRequestIDFrom(ctx context.Context) string {
	ids, _ := ctx.Value(requestIDKey).(requestIDs)
	return ids.client
}
