package store

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// IDLen is the length of every id NewID returns.
const IDLen = 26

// idEncoding is Crockford's base32 alphabet in lower case. Its characters are
// in ascending ASCII order, so comparing two encoded ids as strings compares
// their 128 bits, which begin with the creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").
	WithPadding(base32.NoPadding)

// NewID returns a new todo id: 48 bits of Unix time in milliseconds followed by
// 80 random bits, as 26 lower-case base32 characters. Ids from different
// processes are unique with overwhelming probability; ids from one process
// strictly increase, so sorting ids sorts todos by creation time.
func NewID() string { return ids.next(time.Now()) }

var ids idGenerator

// idGenerator remembers the last id so that ids made in the same millisecond
// (or after the clock stepped back) still sort after it, as ULID does.
type idGenerator struct {
	mu   sync.Mutex
	last [16]byte
}

func (g *idGenerator) next(now time.Time) string {
	ms := uint64(now.UnixMilli())
	var id [16]byte

	g.mu.Lock()
	if lastMs := binary.BigEndian.Uint64(g.last[:8]) >> 16; ms > lastMs {
		binary.BigEndian.PutUint64(id[:8], ms<<16)
		rand.Read(id[6:]) // never fails since Go 1.24
	} else {
		// Same millisecond or the clock went back: add one to the previous id.
		// A carry out of the random part moves the time forward by a
		// millisecond, which keeps ids unique and ordered.
		id = g.last
		for i := len(id) - 1; i >= 0; i-- {
			id[i]++
			if id[i] != 0 {
				break
			}
		}
	}
	g.last = id
	g.mu.Unlock()

	return idEncoding.EncodeToString(id[:])
}

// IDTime returns the creation time embedded in an id made by NewID, in UTC
// with millisecond precision. A string that is not such an id is ErrInvalid.
func IDTime(id string) (time.Time, error) {
	raw, err := parseID(id)
	if err != nil {
		return time.Time{}, err
	}
	ms := binary.BigEndian.Uint64(raw[:8]) >> 16
	return time.UnixMilli(int64(ms)).UTC(), nil
}

func parseID(id string) ([16]byte, error) {
	var raw [16]byte
	if len(id) != IDLen {
		return raw, fmt.Errorf("%w: id %q is not %d characters long", ErrInvalid, truncate(id), IDLen)
	}
	n, err := idEncoding.Decode(raw[:], []byte(id))
	// The last character carries 3 bits and 2 ignored ones; re-encoding
	// refuses the variants with those set, so one id has one spelling.
	if err != nil || n != len(raw) || idEncoding.EncodeToString(raw[:]) != id {
		return raw, fmt.Errorf("%w: id %q is not a todo id", ErrInvalid, truncate(id))
	}
	return raw, nil
}

// truncate keeps error messages short when the input is not.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
