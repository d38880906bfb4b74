package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	var g Gate
	leave, err := g.Enter(context.Background())
	if err != nil {
		t.Fatalf("Enter on an open gate: %v", err)
	}
	released := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		closed <- g.Close(func() error { close(released); return nil })
	}()
	select {
	case <-released:
		t.Fatal("Close released the backend while a call was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	leave()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := g.Enter(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Enter after Close got %v, want ErrClosed", err)
	}
	if err := g.Close(func() error { t.Error("release ran twice"); return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close got %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var open Gate
	if _, err := open.Enter(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Enter with a finished ctx got %v, want context.Canceled", err)
	}
}
