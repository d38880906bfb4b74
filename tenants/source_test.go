package tenants

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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

// A configuration file past MaxDocumentBytes, or one that never ends, is
// refused at once with the cap named, not read until memory runs out.
func TestReadFileIsBounded(t *testing.T) {
	big := filepath.Join(t.TempDir(), "tenants.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxDocumentBytes + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	paths := []string{big}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths = append(paths, "/dev/zero")
	}
	for _, p := range paths {
		if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "more than 16 MiB") || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and the 16 MiB cap", p, err)
		}
	}
	ok := filepath.Join(t.TempDir(), "ok.json")
	os.WriteFile(ok, []byte(`{"tenants": []}`), 0o600)
	if data, err := ReadFile(ok); err != nil || string(data) != `{"tenants": []}` {
		t.Errorf("a small file: %q %v", data, err)
	}
}
