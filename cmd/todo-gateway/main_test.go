package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHelpAndDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string // "" means stdout must be empty
		stderrHas  string // "" means stderr must be empty
		stderrMiss string
	}{
		{"no arguments", nil, 2, "", "Commands:", ""},
		{"--help", []string{"--help"}, 0, "Commands:\n  check", "", ""},
		{"-h", []string{"-h"}, 0, "Commands:\n  check", "", ""},
		{"help", []string{"help"}, 0, "todo-gateway <command> [flags]", "", ""},
		{"help check", []string{"help", "check"}, 0, "\n  --config file\n", "", ""},
		{"help serve", []string{"help", "serve"}, 0, "  --log-level level\n", "", ""},
		{"version", []string{"version"}, 0, "todo-gateway ", "", ""},
		{"--version", []string{"--version"}, 0, " revision ", "", ""},
		{"version extra", []string{"version", "x"}, 2, "", `unexpected argument "x"`, ""},
		{"help providers", []string{"help", "providers"}, 0, "[--timeout DURATION] [--parallel N] [--width N]", "", ""},
		{"help unknown", []string{"help", "frobnicate"}, 2, "", `unknown command "frobnicate"`, ""},
		{"check -h", []string{"check", "-h"}, 0, "Usage: todo-gateway check --config FILE", "", ""},
		{"check --help", []string{"check", "--help"}, 0, "ok: N tenants", "", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", "todo-gateway: unknown command \"frobnicate\"\n\ntodo-gateway hosts", ""},
		{"missing --config", []string{"check"}, 2, "", "todo-gateway check: --config FILE is required", ""},
		{"unknown flag", []string{"check", "--cfg", "x"}, 2, "", "flag provided but not defined: -cfg", ""},
		{"positional file", []string{"check", "tenants.json"}, 2, "", `unexpected argument "tenants.json"`, ""},
		{"missing file", []string{"check", "--config", "/nonexistent/tenants.json"}, 1, "", "/nonexistent/tenants.json", "Usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code got %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			check := func(stream, got, want string) {
				if want == "" && got != "" {
					t.Errorf("%s got %q, want nothing", stream, got)
				}
				if !strings.Contains(got, want) {
					t.Errorf("%s got %q, want it to contain %q", stream, got, want)
				}
			}
			check("stdout", stdout, tc.stdoutHas)
			check("stderr", stderr, tc.stderrHas)
			if tc.stderrMiss != "" && strings.Contains(stderr, tc.stderrMiss) {
				t.Errorf("stderr got %q, want no %q", stderr, tc.stderrMiss)
			}
		})
	}
}

func TestCheckExample(t *testing.T) {
	code, stdout, stderr := runCLI("check", "--config", filepath.Join("..", "..", "tenants.example.json"))
	if code != 0 || stdout != "ok: 3 tenants\n" || stderr != "" {
		t.Errorf("got exit %d stdout %q stderr %q, want 0, \"ok: 3 tenants\\n\", nothing", code, stdout, stderr)
	}
}

func TestCheckOneTenant(t *testing.T) {
	path := writeFile(t, `{"tenants": [{"id": "acme", "resource": "http://localhost:3001/acme",
		"provider": {"type": "logto", "issuer": "https://acme.logto.app/oidc"},
		"audience": {"strategy": "resource"}}]}`)
	code, stdout, _ := runCLI("check", "--config="+path)
	if code != 0 || stdout != "ok: 1 tenant\n" {
		t.Errorf("got exit %d stdout %q, want 0, \"ok: 1 tenant\\n\"", code, stdout)
	}
}

func TestCheckBrokenFile(t *testing.T) {
	path := writeFile(t, `{
  "listen": "nowhere",
  "tenants": [
    { "id": "acme", "resource": "http://localhost:3001/acme/",
      "provider": { "type": "logto", "issuer": "https://acme.logto.app" },
      "audience": { "strategy": "resource" } },
    { "id": "globex", "resource": "http://localhost:3001/globex",
      "provider": { "type": "oauth", "issuer": "https://auth.globex.example", "token": "introspection",
                    "introspection": { "client_id": "gw", "client_secret": "hunter2" } },
      "audience": { "strategy": "audience" } }
  ]
}`)
	code, stdout, stderr := runCLI("check", "--config", path)
	want := []string{
		path + `: listen: must be host:port, such as "127.0.0.1:3001"`,
		path + `: tenants[0] (id "acme").resource: not canonical: write "http://localhost:3001/acme"`,
		path + `: tenants[0] (id "acme").provider.issuer: a logto issuer ends in "/oidc", such as "https://acme.logto.app/oidc"`,
		path + `: tenants[1] (id "globex").provider.introspection.client_secret: inline secrets are not allowed; use client_secret_env or client_secret_file`,
		path + `: tenants[1] (id "globex").provider.introspection: set client_secret_env or client_secret_file`,
		path + `: tenants[1] (id "globex").audience.values: required with strategy "audience": the accepted "aud" values`,
	}
	if code != 1 || stdout != "" {
		t.Errorf("got exit %d stdout %q, want 1 and nothing", code, stdout)
	}
	if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckSyntaxAndUnknownField(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"syntax", "{\n  \"listen\": ,\n}", ": line 2, column 13: invalid character ',' looking for beginning of value\n"},
		{"unknown field", `{"tenants": [{"id": "globex", "issuer_url": "x"}]}`, `: tenants[0] (id "globex"): unknown field "issuer_url"` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			code, stdout, stderr := runCLI("check", "--config", path)
			if code != 1 || stdout != "" || stderr != path+tc.want {
				t.Errorf("got exit %d stdout %q stderr %q, want 1, nothing, %q", code, stdout, stderr, path+tc.want)
			}
		})
	}
}
