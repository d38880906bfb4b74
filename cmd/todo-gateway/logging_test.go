package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// lines splits what the buffer holds into log lines.
func lines(b *lockedBuffer) []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

func TestLoggerBatchesInfoLines(t *testing.T) {
	var out lockedBuffer
	log, closer := newLogger(&out, logFlags{level: slog.LevelInfo, format: "json", flush: time.Hour})
	log.Info("access", "n", 1)
	log.Info("audit", "n", 2)
	if out.String() != "" {
		t.Fatalf("info lines written before the interval: %q", out.String())
	}
	// A warning takes the buffered lines with it, in order.
	log.Warn("slow", "n", 3)
	if got := lines(&out); len(got) != 3 || !strings.Contains(got[0], `"access"`) || !strings.Contains(got[2], `"slow"`) {
		t.Fatalf("after a warning: %q", got)
	}
	log.Info("last")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(&out)
	if len(got) != 4 || !strings.Contains(got[3], `"last"`) {
		t.Fatalf("Close left lines in the buffer: %q", got)
	}
	for _, l := range got {
		if !json.Valid([]byte(l)) {
			t.Fatalf("not a JSON line: %q", l)
		}
	}
	// After Close every line goes straight through.
	log.Info("after")
	if got := lines(&out); len(got) != 5 {
		t.Fatalf("a line after Close: %q", got)
	}
}

func TestLoggerFlushesWithinTheInterval(t *testing.T) {
	var out lockedBuffer
	log, closer := newLogger(&out, logFlags{level: slog.LevelInfo, format: "json", flush: 20 * time.Millisecond})
	defer closer.Close()
	log.Info("access")
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the line was not written within 5 s of a 20 ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoggerUnbufferedLevelAndText(t *testing.T) {
	var out lockedBuffer
	log, closer := newLogger(&out, logFlags{level: slog.LevelWarn, format: "text"})
	defer closer.Close()
	log.Info("dropped")
	log.Warn("kept", "tenant", "acme")
	if got := out.String(); got == "" || strings.Contains(got, "dropped") || !strings.Contains(got, "msg=kept tenant=acme") {
		t.Fatalf("text output at warn level, unbuffered: %q", got)
	}
}

func TestServeLogFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		want logFlags
	}{
		{nil, true, logFlags{level: slog.LevelInfo, format: "json", flush: defaultLogFlush}},
		{[]string{"--log-level", "debug", "--log-format", "text", "--log-flush", "0"}, true, logFlags{level: slog.LevelDebug, format: "text"}},
		{[]string{"--log-level", "ERROR"}, true, logFlags{level: slog.LevelError, format: "json", flush: defaultLogFlush}},
		{[]string{"--log-level", "loud"}, false, logFlags{}},
		{[]string{"--log-format", "xml"}, false, logFlags{}},
	} {
		fs, opts := serveFlags()
		fs.SetOutput(io.Discard)
		err := fs.Parse(tc.args)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v", tc.args, err)
			continue
		}
		if tc.ok && opts.log != tc.want {
			t.Errorf("%q: %+v, want %+v", tc.args, opts.log, tc.want)
		}
	}
}
