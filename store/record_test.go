package store

import (
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// legacyRecord is the record as releases before TimeLayout wrote it: a
// time.Time, in RFC3339Nano with its fraction trimmed.
type legacyRecord struct {
	ID        string    `json:"id"`
	Content   string    `json:"content"`
	Owner     string    `json:"owner"`
	CreatedAt time.Time `json:"createdAt"`
}

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
		old, err := stdjson.Marshal(legacyRecord{ID: todo.ID, Content: todo.Content, Owner: todo.OwnerID, CreatedAt: todo.CreatedAt})
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
		var r legacyRecord
		if err := stdjson.Unmarshal(val, &r); err != nil {
			t.Fatalf("encoding/json cannot read %s: %v", val, err)
		}
		if !r.CreatedAt.Equal(todo.CreatedAt.Truncate(time.Millisecond)) || r.ID != todo.ID || r.Content != todo.Content || r.Owner != todo.OwnerID {
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

// createdAt is written with exactly three fractional digits, in records and
// in the tools' output, so that the strings sort like the times; records
// written before, with a trimmed fraction, still read.
func TestCreatedAtHasThreeFractionalDigits(t *testing.T) {
	for _, tc := range []struct {
		nsec int
		want string
	}{
		{0, "2026-12-02T07:12:07.000Z"},
		{580_000_000, "2026-12-02T07:12:07.580Z"},
		{5_000_000, "2026-12-02T07:12:07.005Z"},
		{123_456_789, "2026-12-02T07:12:07.123Z"},
	} {
		todo := Todo{ID: "01KBCDEFGHJKMNPQRSTVWXYZ12", Content: "x", OwnerID: "alice",
			CreatedAt: time.Date(2026, 12, 2, 7, 12, 7, tc.nsec, time.UTC)}
		val, err := EncodeRecord(todo)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(val), `"createdAt":"`+tc.want+`"`) {
			t.Errorf("record %s, want createdAt %s", val, tc.want)
		}
		out, err := json.Marshal(todo)
		if err != nil {
			t.Fatal(err)
		}
		old, err := stdjson.Marshal(todo)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{out, old} {
			if !strings.Contains(string(b), `"createdAt":"`+tc.want+`"`) {
				t.Errorf("Todo as JSON %s, want createdAt %s", b, tc.want)
			}
		}
		if got := todo.CreatedAt.Format(TimeLayout); got != tc.want {
			t.Errorf("TimeLayout gives %s, want %s (Todo's format option and TimeLayout differ?)", got, tc.want)
		}
	}
	for stored, want := range map[string]time.Time{
		"2026-12-02T07:12:07.58Z":        time.Date(2026, 12, 2, 7, 12, 7, 580_000_000, time.UTC),
		"2026-12-02T07:12:07Z":           time.Date(2026, 12, 2, 7, 12, 7, 0, time.UTC),
		"2026-12-02T07:12:07.123456789Z": time.Date(2026, 12, 2, 7, 12, 7, 123_456_789, time.UTC),
		"2026-12-02T09:12:07.5+02:00":    time.Date(2026, 12, 2, 7, 12, 7, 500_000_000, time.UTC),
	} {
		got, err := DecodeRecord([]byte(`{"id":"01KBCDEFGHJKMNPQRSTVWXYZ12","content":"x","owner":"alice","createdAt":"` + stored + `"}`))
		if err != nil || !got.CreatedAt.Equal(want) {
			t.Errorf("record with createdAt %s: got %v, %v, want %v", stored, got.CreatedAt, err, want)
		}
	}
}

// Todo's token-by-token MarshalJSONTo writes exactly what marshalling its
// written form does, for any content, and in TimeLayout.
func TestTodoMarshalJSONToMatchesWrittenForm(t *testing.T) {
	at := time.Date(2026, 12, 3, 7, 12, 7, 580_000_000, time.UTC)
	for _, todo := range []Todo{
		{ID: "a", Content: "plain", OwnerID: "u", CreatedAt: at},
		{ID: "b", Content: `<script>&"quotes"\ é 😀 ` + "\u2028\t\n", OwnerID: "user|1", CreatedAt: at.Add(time.Nanosecond)},
		{},
	} {
		got, err := json.Marshal(todo)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(todo.written())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("MarshalJSONTo wrote\n%s\nwant\n%s", got, want)
		}
		in, err := json.Marshal([]Todo{todo, todo})
		if err != nil || string(in) != "["+string(want)+","+string(want)+"]" {
			t.Errorf("in a list: %s (%v)", in, err)
		}
	}
}
