package store

import (
	stdjson "encoding/json"
	"testing"
	"time"
)

// Files written before records moved to encoding/json/v2 (go-json-experiment) hold
// what encoding/json wrote (HTML characters escaped, for one), and a binary
// rolled back to an older release must still read what this one writes. Both
// directions are pinned here on content that the two encoders spell
// differently.
func TestRecordsCompatibleWithEncodingJSON(t *testing.T) {
	contents := []string{
		"buy milk",
		`<script>alert("x")</script> & more`,
		"line one\nline two\ttabbed \\ backslash",
		"unicode: été, 日本語, 🙂, \u2028 separator, \u00a0 nbsp",
		"\x01 control",
	}
	created := time.Date(2026, 12, 2, 4, 38, 40, 123456789, time.UTC)
	for _, content := range contents {
		todo := Todo{ID: "01KBCDEFGHJKMNPQRSTVWXYZ12", Content: content, OwnerID: "alice", CreatedAt: created}

		// What encoding/json wrote, this package reads.
		old, err := stdjson.Marshal(record{ID: todo.ID, Content: todo.Content, Owner: todo.OwnerID, CreatedAt: todo.CreatedAt})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(old)
		if err != nil {
			t.Fatalf("decode %s: %v", old, err)
		}
		if !got.CreatedAt.Equal(todo.CreatedAt) || got.ID != todo.ID || got.Content != todo.Content || got.OwnerID != todo.OwnerID {
			t.Errorf("decode of encoding/json's %s: got %+v, want %+v", old, got, todo)
		}

		// What this package writes, encoding/json reads.
		val, err := EncodeRecord(todo)
		if err != nil {
			t.Fatal(err)
		}
		var r record
		if err := stdjson.Unmarshal(val, &r); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", val, err)
		}
		if !r.CreatedAt.Equal(todo.CreatedAt) || r.ID != todo.ID || r.Content != todo.Content || r.Owner != todo.OwnerID {
			t.Errorf("encoding/json read %s as %+v, want %+v", val, r, todo)
		}
	}
}

// A record that is not one fails to decode with an error, never a zero todo.
func TestDecodeRefusesDamagedRecords(t *testing.T) {
	for _, v := range []string{``, `{`, `[]`, `{"id":1}`, `{"createdAt":"yesterday"}`, "{\"content\":\"\xff\"}"} {
		if got, err := DecodeRecord([]byte(v)); err == nil {
			t.Errorf("DecodeRecord(%q): got %+v, want an error", v, got)
		}
	}
}
