package store

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateContent(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string // substring of the message, "" for no error
	}{
		{"plain", "buy milk", ""},
		{"unicode", "Füße 🦶", ""},
		{"largest", strings.Repeat("x", MaxContentBytes), ""},
		{"largest in multibyte runes", strings.Repeat("€", MaxContentBytes/3), ""},
		{"NUL is text", "a\x00b", ""},
		{"empty", "", "content is empty"},
		{"blank", " \t\n\r", "content is empty"},
		{"unicode blank", "\u00a0\u2003\u3000", "content is empty"},
		{"one byte over", strings.Repeat("x", MaxContentBytes+1), "content is 10241 bytes, the limit is 10240"},
		{"over by a rune", strings.Repeat("x", MaxContentBytes-1) + "é", "the limit is 10240"},
		{"invalid UTF-8", "caf\xc3", "not valid UTF-8"},
		{"invalid UTF-8 and blank", " \xff ", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateContent(tc.content)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("ValidateContent: got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ValidateContent: got %v, want ErrInvalid saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		value   string
		wantErr string
	}{
		{"alice", ""},
		{"auth0|5f7c8ec7c33c6c004bbafe82", ""},
		{"ünïcode", ""},
		{strings.Repeat("a", MaxKeyBytes), ""},
		{"", "owner is empty"},
		{strings.Repeat("a", MaxKeyBytes+1), "owner is 513 bytes, the limit is 512"},
		{"ali\xffce", "not valid UTF-8"},
		{"ali\x00ce", "NUL"},
	}
	for _, tc := range tests {
		err := ValidateKey("owner", tc.value)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateKey(%.20q): got %v, want nil", tc.value, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ValidateKey(%.20q): got %v, want ErrInvalid saying %q", tc.value, err, tc.wantErr)
		}
	}
}

func TestNewTodo(t *testing.T) {
	todo, record, err := NewTodo("acme", "alice", "buy milk")
	if err != nil {
		t.Fatalf("NewTodo: %v", err)
	}
	at, err := IDTime(todo.ID)
	if err != nil || !at.Equal(todo.CreatedAt) || todo.OwnerID != "alice" || todo.Content != "buy milk" {
		t.Errorf("NewTodo = %+v (id time %v, %v); want owner alice, content buy milk, CreatedAt = id time", todo, at, err)
	}
	if back, err := DecodeRecord(record); err != nil || back != todo {
		t.Errorf("the record decodes to %+v, %v; want %+v", back, err, todo)
	}
	for _, in := range [][3]string{{"acme", "", "buy milk"}, {"acme", "alice", " "}, {"", "alice", "buy milk"}} {
		if got, _, err := NewTodo(in[0], in[1], in[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewTodo(%q, %q, %q) = %+v, %v; want ErrInvalid", in[0], in[1], in[2], got, err)
		}
	}
}

func TestResolve(t *testing.T) {
	id := NewID()
	tests := []struct {
		opts      ListOptions
		tenant    string
		want      int
		wantAfter string
		wantErr   bool
	}{
		{ListOptions{}, "acme", DefaultLimit, "", false},
		{ListOptions{Limit: 1}, "acme", 1, "", false},
		{ListOptions{Limit: MaxLimit, Cursor: EncodeCursor(id)}, "acme", MaxLimit, id, false},
		{ListOptions{Limit: -1}, "acme", 0, "", true},
		{ListOptions{Limit: MaxLimit + 1}, "acme", 0, "", true},
		{ListOptions{Cursor: "!"}, "acme", 0, "", true},
		{ListOptions{Owner: "alice"}, "acme", DefaultLimit, "", false},
		{ListOptions{Owner: "a\x00b"}, "acme", 0, "", true},
		{ListOptions{}, "", 0, "", true},
	}
	for _, tc := range tests {
		limit, after, err := tc.opts.Resolve(tc.tenant)
		if errors.Is(err, ErrInvalid) != tc.wantErr || (!tc.wantErr && (limit != tc.want || after != tc.wantAfter)) {
			t.Errorf("Resolve(%+v, %q) = %d, %q, %v; want %d, %q, error %v", tc.opts, tc.tenant, limit, after, err, tc.want, tc.wantAfter, tc.wantErr)
		}
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	for _, cursor := range []string{"!", "AQ", "AA", EncodeCursor("x"), EncodeCursor(NewID()) + "A"} {
		if got, err := DecodeCursor(cursor); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeCursor(%q) = %q, %v; want ErrInvalid", cursor, got, err)
		}
	}
}
