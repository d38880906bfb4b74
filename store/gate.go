package store

import (
	"context"
	"sync"
)

// Gate is what lets a backend honour the Close contract of Store: Close
// waits for the calls in progress, and every call after it, Close included,
// returns ErrClosed instead of reaching a released backend. The zero Gate
// is open.
type Gate struct {
	// mu is held shared by every call and exclusively by Close.
	mu     sync.RWMutex
	closed bool
}

// Enter starts a call: it refuses a finished ctx and a closed gate, and
// holds off Close until leave is called.
func (g *Gate) Enter(ctx context.Context) (leave func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return nil, ErrClosed
	}
	return g.mu.RUnlock, nil
}

// Close waits for the calls in progress, closes the gate and runs release
// (which frees the backend) with no call in progress. A second Close
// returns ErrClosed and does not run release.
func (g *Gate) Close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	g.closed = true
	return release()
}
