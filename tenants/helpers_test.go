package tenants

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// A test document is built as generic JSON values so that each case can
// break exactly one thing of a known-good configuration.

func baseTenant(id string) map[string]any {
	return map[string]any{
		"id":       id,
		"resource": "http://localhost:3001/" + id,
		"provider": map[string]any{"type": "logto", "issuer": "https://" + id + ".logto.app/oidc"},
		"audience": map[string]any{"strategy": "resource"},
	}
}

func baseDoc(ids ...string) map[string]any {
	if len(ids) == 0 {
		ids = []string{"acme"}
	}
	var ts []any
	for _, id := range ids {
		ts = append(ts, baseTenant(id))
	}
	return map[string]any{"tenants": ts}
}

// deleted as an edit's value removes the member.
var deleted = new(int)

type edit struct {
	path  string // dotted, array indexes as numbers: "tenants.0.provider.issuer"
	value any
}

func set(path string, value any) edit { return edit{path, value} }
func del(path string) edit            { return edit{path, deleted} }

func apply(t *testing.T, doc map[string]any, edits ...edit) []byte {
	t.Helper()
	for _, e := range edits {
		parts := strings.Split(e.path, ".")
		var cur any = doc
		for _, p := range parts[:len(parts)-1] {
			switch c := cur.(type) {
			case map[string]any:
				next, ok := c[p]
				if !ok {
					next = map[string]any{}
					c[p] = next
				}
				cur = next
			case []any:
				i, err := strconv.Atoi(p)
				if err != nil || i >= len(c) {
					t.Fatalf("bad edit path %q", e.path)
				}
				cur = c[i]
			}
		}
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("edit path %q does not end in an object", e.path)
		}
		last := parts[len(parts)-1]
		if e.value == deleted {
			delete(m, last)
		} else {
			m[last] = e.value
		}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// problemsOf parses data and returns its problems, failing the test on any
// other kind of error.
func problemsOf(t *testing.T, data []byte) []Problem {
	t.Helper()
	_, err := Parse(data)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse: got %T %v, want a *ValidationError", err, err)
	}
	return ve.Problems
}

func mustParse(t *testing.T, data []byte) *Config {
	t.Helper()
	cfg, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: got error\n%v\nwant none", err)
	}
	return cfg
}
