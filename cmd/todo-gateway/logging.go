package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logFlags are serve's logging options.
type logFlags struct {
	level  slog.Level
	format string
	flush  time.Duration
}

func (l *logFlags) register(fs *flag.FlagSet) {
	l.format, l.flush = "json", defaultLogFlush
	fs.TextVar(&l.level, "log-level", slog.LevelInfo, "the lowest `level` logged: debug, info, warn or error")
	fs.Func("log-format", "the log `format`: json (default) or text (logfmt-like key=value lines)", func(s string) error {
		switch s {
		case "json", "text":
			l.format = s
			return nil
		}
		return fmt.Errorf("%q is neither json nor text", s)
	})
	fs.DurationVar(&l.flush, "log-flush", defaultLogFlush,
		"how long an info line may wait in the log buffer before it is written (0: every line is written at once; warnings and errors always are)")
}

// defaultLogFlush bounds what a crash (SIGKILL, an unrecovered panic) can take
// from the log. Batching the access and audit lines is what keeps the write
// system calls off the hot path: with one per line, get-todos measured
// 35-37 % of a bare handler under wrk, 41-42 % with the buffer (docs/testing.md,
// Benchmarks).
const defaultLogFlush = 100 * time.Millisecond

// logBufferSize is a few hundred lines: a full buffer is written at once,
// whatever the interval.
const logBufferSize = 64 << 10

// newLogger builds serve's logger on w. Close writes what is still buffered;
// serve calls it last.
func newLogger(w io.Writer, opts logFlags) (*slog.Logger, io.Closer) {
	out := newLineBuffer(w, opts.flush)
	hopts := &slog.HandlerOptions{Level: opts.level}
	var h slog.Handler = slog.NewJSONHandler(out, hopts)
	if opts.format == "text" {
		h = slog.NewTextHandler(out, hopts)
	}
	return slog.New(urgentHandler{h, out}), out
}

// lineBuffer holds log lines for at most its interval. Each line arrives in
// one Write (slog handlers format a record, then write it once), so a flush
// never splits a line.
type lineBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	raw  io.Writer
	stop chan struct{}
	done sync.WaitGroup
}

func newLineBuffer(w io.Writer, interval time.Duration) *lineBuffer {
	b := &lineBuffer{raw: w}
	if interval <= 0 {
		return b
	}
	b.w = bufio.NewWriterSize(w, logBufferSize)
	b.stop = make(chan struct{})
	b.done.Add(1)
	go b.flushEvery(interval)
	return b
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return b.raw.Write(p)
	}
	return b.w.Write(p)
}

// Flush writes the buffered lines now.
func (b *lineBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w != nil {
		_ = b.w.Flush() // stderr gone: nothing is left to tell
	}
}

func (b *lineBuffer) flushEvery(interval time.Duration) {
	defer b.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Close stops the timer, writes what is buffered and from then on writes
// every line at once.
func (b *lineBuffer) Close() error {
	if b.stop == nil {
		return nil
	}
	close(b.stop)
	b.done.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.w.Flush()
	b.w = nil
	return err
}

// urgentHandler writes warnings and errors through at once, with whatever
// was buffered before them, so that a problem is never waiting in a buffer
// and lines keep their order.
type urgentHandler struct {
	slog.Handler
	out *lineBuffer
}

func (h urgentHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.out.Flush()
	}
	return err
}

func (h urgentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgentHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h urgentHandler) WithGroup(name string) slog.Handler {
	return urgentHandler{h.Handler.WithGroup(name), h.out}
}
