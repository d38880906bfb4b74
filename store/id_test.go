package store

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIDShape(t *testing.T) {
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	for range 1000 {
		id := NewID()
		if len(id) != IDLen {
			t.Fatalf("NewID() = %q: got %d characters, want %d", id, len(id), IDLen)
		}
		if i := strings.IndexFunc(id, func(r rune) bool { return !strings.ContainsRune(alphabet, r) }); i >= 0 {
			t.Fatalf("NewID() = %q: got %q at %d, want only %s", id, id[i], i, alphabet)
		}
	}
}

func TestNewIDTime(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	id := NewID()
	after := time.Now()
	got, err := IDTime(id)
	if err != nil {
		t.Fatalf("IDTime(%q): %v", id, err)
	}
	if got.Before(before) || got.After(after) || got.Location() != time.UTC {
		t.Errorf("IDTime(%q) = %v, want a UTC time in [%v, %v]", id, got, before, after)
	}
}

// TestNewIDOrder checks the property listing relies on: string order of ids
// is the order in which they were made, also within one millisecond and
// across goroutines.
func TestNewIDOrder(t *testing.T) {
	const goroutines, each = 8, 2000
	var (
		mu   sync.Mutex
		seqs [][]string
		wg   sync.WaitGroup
	)
	for range goroutines {
		wg.Go(func() {
			seq := make([]string, each)
			for i := range seq {
				seq[i] = NewID()
			}
			mu.Lock()
			seqs = append(seqs, seq)
			mu.Unlock()
		})
	}
	wg.Wait()

	seen := map[string]bool{}
	for _, seq := range seqs {
		for i, id := range seq {
			if i > 0 && id <= seq[i-1] {
				t.Fatalf("NewID: got %s after %s, want strictly increasing", id, seq[i-1])
			}
			if seen[id] {
				t.Fatalf("NewID: got %s twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != goroutines*each {
		t.Errorf("NewID: got %d distinct ids, want %d", len(seen), goroutines*each)
	}
}

// TestIDGeneratorClock drives one generator with a fake clock through the
// increment path: same millisecond, clock stepping back, and a carry out of
// the random bits into the time.
func TestIDGeneratorClock(t *testing.T) {
	t0 := time.UnixMilli(1_750_000_000_000)
	// idOf builds an id from its time and one byte repeated over the 80
	// random bits.
	idOf := func(ms int64, fill byte) [16]byte {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(ms)<<16)
		for i := 6; i < len(id); i++ {
			id[i] = fill
		}
		return id
	}
	raw := func(t *testing.T, id string) [16]byte {
		t.Helper()
		r, err := parseID(id)
		if err != nil {
			t.Fatalf("parseID(%q): %v", id, err)
		}
		return r
	}

	t.Run("fresh millisecond", func(t *testing.T) {
		var g idGenerator
		for _, now := range []time.Time{t0, t0.Add(time.Millisecond)} {
			got := raw(t, g.next(now))
			if ms := binary.BigEndian.Uint64(got[:8]) >> 16; ms != uint64(now.UnixMilli()) {
				t.Errorf("next(%v): got time %d, want %d", now, ms, now.UnixMilli())
			}
		}
	})

	t.Run("same millisecond and clock back", func(t *testing.T) {
		g := idGenerator{last: idOf(t0.UnixMilli(), 0x10)}
		want := g.last
		for _, now := range []time.Time{t0, t0.Add(500 * time.Microsecond), t0.Add(-time.Second)} {
			want[15]++
			if got := raw(t, g.next(now)); got != want {
				t.Errorf("next(t0%+v): got %x, want the previous id plus one %x", now.Sub(t0), got, want)
			}
		}
	})

	t.Run("carry into the time", func(t *testing.T) {
		g := idGenerator{last: idOf(t0.UnixMilli(), 0xff)}
		got := raw(t, g.next(t0))
		if want := idOf(t0.UnixMilli()+1, 0); got != want {
			t.Errorf("next after an all-ones random part: got %x, want %x (time+1ms, random part zero)", got, want)
		}
	})
}

func TestIDTimeRejects(t *testing.T) {
	good := NewID()
	tests := []struct{ name, id string }{
		{"empty", ""},
		{"short", good[:IDLen-1]},
		{"long", good + "0"},
		{"upper case", strings.ToUpper(good)},
		{"letter outside the alphabet", "u" + good[1:]},
		{"nonzero unused trailing bits", good[:IDLen-1] + "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := IDTime(tc.id); !errors.Is(err, ErrInvalid) {
				t.Errorf("IDTime(%q) = %v, %v; want ErrInvalid", tc.id, got, err)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	ids := []string{NewID(), NewID()}
	for _, id := range ids {
		cursor := EncodeCursor(id)
		got, err := DecodeCursor(cursor)
		if err != nil || got != id {
			t.Errorf("DecodeCursor(EncodeCursor(%q)) = %q, %v; want %q, nil", id, got, err, id)
		}
		if strings.Contains(cursor, id) {
			t.Errorf("EncodeCursor(%q) = %q: got the id in clear, want an opaque token", id, cursor)
		}
	}
	if got, err := DecodeCursor(""); got != "" || err != nil {
		t.Errorf(`DecodeCursor("") = %q, %v; want "", nil`, got, err)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids %v: want sorted", ids)
	}
}
