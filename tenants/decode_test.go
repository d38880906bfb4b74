package tenants

import (
	"errors"
	"strings"
	"testing"
)

func TestStrictDecoding(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  []Problem
	}{
		{
			"unknown tenant field names the tenant",
			[]edit{set("tenants.1.issuer_url", "https://x")},
			[]Problem{{"tenants[1]", "globex", `unknown field "issuer_url"`}},
		},
		{
			"unknown nested field",
			[]edit{set("tenants.0.provider.issuer_url", "https://x")},
			[]Problem{{"tenants[0].provider", "acme", `unknown field "issuer_url" (did you mean "issuer"?)`}},
		},
		{
			"unknown field in introspection",
			[]edit{set("tenants.0.provider.introspection", obj{"client_id": "gw", "secret": "x"})},
			[]Problem{{"tenants[0].provider.introspection", "acme", `unknown field "secret"`}},
		},
		{
			"unknown top-level field",
			[]edit{set("tenant", []any{})},
			[]Problem{{"", "", `unknown field "tenant" (did you mean "tenants"?)`}},
		},
		{
			"typos in every block are answered with the nearest field",
			[]edit{
				set("admni", obj{}), set("http", obj{"body_limt": 1}), set("shutdown", obj{"grcae": "1s"}),
				set("store", obj{"drivr": "bbolt"}), set("tenants.0.provider.isuer", "x"),
				set("tenants.0.audience", obj{"strategi": "resource"}), set("tenants.0.claims", obj{"subjekt": "sub"}),
				set("tenants.0.provider.introspection", obj{"clinet_id": "gw"}),
			},
			[]Problem{
				{"", "", `unknown field "admni" (did you mean "admin"?)`},
				{"http", "", `unknown field "body_limt" (did you mean "body_limit"?)`},
				{"shutdown", "", `unknown field "grcae" (did you mean "grace"?)`},
				{"store", "", `unknown field "drivr" (did you mean "driver"?)`},
				{"tenants[0].audience", "acme", `unknown field "strategi" (did you mean "strategy"?)`},
				{"tenants[0].claims", "acme", `unknown field "subjekt" (did you mean "subject"?)`},
				{"tenants[0].provider.introspection", "acme", `unknown field "clinet_id" (did you mean "client_id"?)`},
				{"tenants[0].provider", "acme", `unknown field "isuer" (did you mean "issuer"?)`},
			},
		},
		{
			"unknown store field",
			[]edit{set("store", obj{"dir": "data"})},
			[]Problem{{"store", "", `unknown field "dir"`}},
		},
		{
			"field in another case",
			[]edit{set("tenants.0.Resource", "x")},
			[]Problem{{"tenants[0]", "acme", `unknown field "Resource" (did you mean "resource"?)`}},
		},
		{
			"field in camel case",
			[]edit{set("tenants.0.resourceName", "x")},
			[]Problem{{"tenants[0]", "acme", `unknown field "resourceName" (did you mean "resource_name"?)`}},
		},
		{
			"wrong type",
			[]edit{set("tenants.0.id", 7)},
			// The id is not a string, so the tenant cannot be named.
			[]Problem{{"tenants[0].id", "", "must be a string, got number"}},
		},
		{
			"object expected",
			[]edit{set("tenants.0.provider", "logto")},
			[]Problem{{"tenants[0].provider", "acme", "must be an object, got string"}},
		},
		{
			"array expected",
			[]edit{set("tenants.0.audience.values", "todo-api")},
			[]Problem{{"tenants[0].audience.values", "acme", "must be an array, got string"}},
		},
		{
			"bool expected",
			[]edit{set("tenants.0.provider.allow_http_issuer", "yes")},
			[]Problem{{"tenants[0].provider.allow_http_issuer", "acme", "must be true or false, got string"}},
		},
		{
			"bad duration",
			[]edit{set("tenants.0.provider.leeway", "10 minutes")},
			[]Problem{{"tenants[0].provider.leeway", "acme", `invalid duration "10 minutes": use a form such as "60s" or "5m"`}},
		},
		{
			"duration as number",
			[]edit{set("store", obj{"batch_delay": 10})},
			[]Problem{{"store.batch_delay", "", `a duration must be a string such as "60s"`}},
		},
		{
			"scope map value",
			[]edit{set("tenants.0.scopes", obj{"create": true})},
			[]Problem{{"tenants[0].scopes.create", "acme", "must be a string, got boolean"}},
		},
		{
			"scope map odd key",
			[]edit{set("tenants.0.scopes", obj{"to do": 1})},
			[]Problem{{`tenants[0].scopes["to do"]`, "acme", "must be a string, got number"}},
		},
		{
			"tenant not an object",
			[]edit{set("tenants", []any{baseTenant("acme"), 5})},
			[]Problem{{"tenants[1]", "", "must be an object, got number"}},
		},
		{
			"every shape problem at once",
			[]edit{
				set("listen", 3001),
				set("tenants.0.provider.issuer_url", "x"),
				set("tenants.0.audience.stratgy", "resource"),
				set("tenants.1.claims", obj{"scope": "scp"}),
			},
			[]Problem{
				{"listen", "", "must be a string, got number"},
				{"tenants[0].audience", "acme", `unknown field "stratgy" (did you mean "strategy"?)`},
				{"tenants[0].provider", "acme", `unknown field "issuer_url" (did you mean "issuer"?)`},
				{"tenants[1].claims", "globex", `unknown field "scope" (did you mean "scopes"?)`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, apply(t, baseDoc("acme", "globex"), tc.edits...))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems %#v, want %#v", len(got), got, tc.want)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("problem %d: got %#v, want %#v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestStrictDecodingMessage(t *testing.T) {
	data := apply(t, baseDoc("acme", "globex"), set("tenants.1.issuer_url", "https://x"))
	_, err := Parse(data)
	if want := `tenants[1] (id "globex"): unknown field "issuer_url"`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// Raw documents, because encoding/json would collapse what these test.
func TestStrictDecodingRaw(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []Problem
	}{
		{
			// encoding/json lets the last duplicate win, which is why
			// duplicates are refused: the label shows the winner.
			"duplicate field",
			`{"tenants": [{"id": "acme", "id": "evil"}]}`,
			[]Problem{{"tenants[0]", "evil", `duplicate field "id"`}},
		},
		{
			"duplicate map key",
			`{"tenants": [{"id": "acme", "scopes": {"create": "a", "create": "b"}}]}`,
			[]Problem{{"tenants[0].scopes", "acme", `duplicate key "create"`}},
		},
		{
			"top level not an object",
			`[{"id": "acme"}]`,
			[]Problem{{"", "", "the configuration must be a JSON object, got array"}},
		},
		{
			"tenants not an array",
			`{"tenants": {"acme": {}}}`,
			[]Problem{{"tenants", "", "must be an array, got object"}},
		},
		{
			// Shape comes first: the invalid resource is not reported until the
			// document decodes, so no problem is a side effect of another.
			"shape problems stop validation",
			`{"tenants": [{"id": "acme", "resource": "nope", "provider": {"type": "logto", "isuer": "x"}}]}`,
			[]Problem{{"tenants[0].provider", "acme", `unknown field "isuer" (did you mean "issuer"?)`}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, []byte(tc.doc))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems %#v, want %#v", len(got), got, tc.want)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Errorf("problem %d: got %#v, want %#v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		line, col int
		msg       string
	}{
		{"empty", "", 1, 1, "unexpected end of JSON input"},
		{"missing value", "{\n  \"listen\": }", 2, 13, "invalid character '}' looking for beginning of value"},
		{"trailing comma", "{\"tenants\": [\n  {},\n]}", 3, 1, "invalid character ']' looking for beginning of value"},
		{"trailing garbage", "{} x", 1, 4, "invalid character 'x' after top-level value"},
		{"truncated", "{\n\"tenants\": [", 2, 12, "unexpected end of JSON input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *SyntaxError", err, err)
			}
			if se.Line != tc.line || se.Column != tc.col {
				t.Errorf("got line %d column %d, want line %d column %d", se.Line, se.Column, tc.line, tc.col)
			}
			if !strings.HasSuffix(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("got %q, want \"line %d, column %d: %s\"", err, tc.line, tc.col, tc.msg)
			}
		})
	}
}
