package tenants

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestVersion(t *testing.T) {
	a, b := Version([]byte(`{"v": 1}`)), Version([]byte(`{"v": 2}`))
	if a == b || len(a) != 64 || a != Version([]byte(`{"v": 1}`)) {
		t.Errorf("got versions %q and %q, want the hex SHA-256 of each", a, b)
	}
}

func TestReadNamesTheSource(t *testing.T) {
	_, _, err := Read(context.Background(), StaticSource{Name: "embedded configuration", Data: []byte(`{"tenants": []}`)})
	if err == nil || err.Error()[:len("embedded configuration: ")] != "embedded configuration: " {
		t.Errorf("got %v, want an error prefixed with the source's name", err)
	}
	_, _, err = Read(context.Background(), FileSource{Path: filepath.Join(t.TempDir(), "missing.json")})
	if !os.IsNotExist(err) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}
