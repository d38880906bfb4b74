package tenants

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse: whatever the bytes, Parse returns a config or a typed error,
// never panics, and an accepted config builds a snapshot.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../tenants.example.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(`{"tenants":[{"id":"a","resource":"http://localhost/a","provider":{"type":"oidc","issuer":"http://localhost/"},"audience":{"strategy":"resource"}}]}`))
	f.Add([]byte(`{"tenants":[{"id":1}]}`))
	f.Add([]byte(`{"tenants":null,"listen":":x"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			var se *SyntaxError
			if !errors.As(err, &ve) && !errors.As(err, &se) && err.Error() == "" {
				t.Fatalf("error without a message: %#v", err)
			}
			return
		}
		if _, err := NewSnapshot(cfg); err != nil {
			t.Fatalf("Parse accepted a config NewSnapshot refuses: %v", err)
		}
	})
}
