package upstream

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// cfgDur is a *providers.Duration parsed from a Go duration string.
func cfgDur(t *testing.T, s string) *providers.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("bad duration %q in test: %v", s, err)
	}
	v := providers.Duration(d)
	return &v
}

// permsPtr is a pointer to a permission list, as other_tools and
// other_methods are written.
func permsPtr(perms ...providers.Permission) *[]providers.Permission {
	if perms == nil {
		perms = []providers.Permission{}
	}
	return &perms
}

// validUpstream is the smallest valid upstream block; cases change it.
func validUpstream() Config {
	return Config{
		Type: TypeUpstream,
		URL:  "https://notes-mcp.internal:8443/mcp",
		Permissions: Permissions{Tools: map[string][]providers.Permission{
			"search": {"notes:read"},
		}},
	}
}

// wantProblem is one problem Validate should report: its exact path and a
// part of its message.
type wantProblem struct {
	path string
	msg  string
}

func checkProblems(t *testing.T, got []Problem, want []wantProblem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Validate() = %d problems %v, want %d %v", len(got), got, len(want), want)
	}
	for i, w := range want {
		if got[i].Path != w.path {
			t.Errorf("problem %d: path = %q, want %q (message %q)", i, got[i].Path, w.path, got[i].Message)
		}
		if !strings.Contains(got[i].Message, w.msg) {
			t.Errorf("problem %d (%s): message = %q, want it to contain %q", i, got[i].Path, got[i].Message, w.msg)
		}
	}
}

func TestValidateAcceptsValidConfigs(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"zero value is the todo server", Config{}},
		{"explicit todo", Config{Type: TypeTodo}},
		{"minimal upstream", validUpstream()},
		{"plain http url with query", func() Config {
			c := validUpstream()
			c.URL = "http://10.0.0.7:8080/mcp?tenant=notes"
			return c
		}()},
		{"upper-case scheme", func() Config {
			c := validUpstream()
			c.URL = "HTTPS://notes.internal/mcp"
			return c
		}()},
		{"tls with https, CA only", func() Config {
			c := validUpstream()
			c.TLS = &TLS{CAFile: "/etc/ca.pem"}
			return c
		}()},
		{"tls with client certificate", func() Config {
			c := validUpstream()
			c.TLS = &TLS{CAFile: "/etc/ca.pem", CertFile: "/etc/cert.pem", KeyFile: "/etc/key.pem"}
			return c
		}()},
		{"timeouts at their bounds", func() Config {
			c := validUpstream()
			c.Timeouts = Timeouts{Connect: cfgDur(t, "1ms"), FirstByte: cfgDur(t, "1h"), Idle: cfgDur(t, "10m")}
			return c
		}()},
		{"assertion header in lower case", func() Config {
			c := validUpstream()
			c.Identity = Identity{Mode: ModeAssertion, Header: "authorization"}
			return c
		}()},
		{"assertion in a custom header, static credential in Authorization", func() Config {
			c := validUpstream()
			c.Identity = Identity{Header: "X-Gateway-Assertion",
				Static: &Static{Header: "Authorization", Prefix: "Bearer ", ValueEnv: "NOTES_TOKEN"}}
			return c
		}()},
		{"static mode", func() Config {
			c := validUpstream()
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", ValueFile: "/run/secrets/key"}}
			return c
		}()},
		{"static mode in Authorization", func() Config {
			c := validUpstream()
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "Authorization", Prefix: "Bearer ", ValueEnv: "_KEY_2"}}
			return c
		}()},
		{"mode none", func() Config {
			c := validUpstream()
			c.Identity = Identity{Mode: ModeNone}
			return c
		}()},
		{"extra headers, each one way", func() Config {
			c := validUpstream()
			c.Headers = map[string]HeaderValue{
				"X-Tenant":   {Value: "notes"},
				"x-api-key":  {ValueEnv: "NOTES_KEY"},
				"X-Client-1": {ValueFile: "/run/secrets/x"},
			}
			return c
		}()},
		{"a tool any caller may call, and no other tools", func() Config {
			c := validUpstream()
			c.Permissions.Tools["public"] = []providers.Permission{}
			c.Permissions.Tools["notes/list.v2_x-y"] = nil
			return c
		}()},
		{"only other_tools", func() Config {
			c := validUpstream()
			c.Permissions = Permissions{OtherTools: permsPtr("notes:read")}
			return c
		}()},
		{"other_tools and other_methods empty", func() Config {
			c := validUpstream()
			c.Permissions.OtherTools = permsPtr()
			c.Permissions.OtherMethods = permsPtr()
			return c
		}()},
		{"permission strings with punctuation", func() Config {
			c := validUpstream()
			c.Permissions.Tools["search"] = []providers.Permission{"notes:read", "https://api.example/notes.read", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}
			return c
		}()},
		{"tool name of 128 characters", func() Config {
			c := validUpstream()
			c.Permissions.Tools[strings.Repeat("t", 128)] = nil
			return c
		}()},
		{"max_concurrent at its bounds (1)", func() Config {
			c := validUpstream()
			c.MaxConcurrent = 1
			return c
		}()},
		{"max_concurrent at its bounds (100000)", func() Config {
			c := validUpstream()
			c.MaxConcurrent = 100000
			return c
		}()},
		{"forward cookies", func() Config {
			c := validUpstream()
			c.ForwardCookies = true
			return c
		}()},
		{"answer_limit at its bounds (64 KiB)", func() Config {
			c := validUpstream()
			c.AnswerLimit = 64 << 10
			return c
		}()},
		{"answer_limit at its bounds (1 GiB)", func() Config {
			c := validUpstream()
			c.AnswerLimit = 1 << 30
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Validate(); len(got) != 0 {
				t.Errorf("Validate() = %v, want no problem", got)
			}
		})
	}
}

func TestValidateTodoWithUpstreamFields(t *testing.T) {
	fields := []struct {
		name string
		set  func(c *Config)
	}{
		{"url", func(c *Config) { c.URL = "https://notes.internal/mcp" }},
		{"tls", func(c *Config) { c.TLS = &TLS{} }},
		{"timeouts.connect", func(c *Config) { c.Timeouts.Connect = cfgDur(t, "5s") }},
		{"timeouts.first_byte", func(c *Config) { c.Timeouts.FirstByte = cfgDur(t, "5s") }},
		{"timeouts.idle", func(c *Config) { c.Timeouts.Idle = cfgDur(t, "5s") }},
		{"identity.mode", func(c *Config) { c.Identity.Mode = ModeAssertion }},
		{"identity.header", func(c *Config) { c.Identity.Header = "Authorization" }},
		{"identity.static", func(c *Config) { c.Identity.Static = &Static{Header: "X-Key", ValueEnv: "K"} }},
		{"permissions.tools", func(c *Config) { c.Permissions.Tools = map[string][]providers.Permission{"search": nil} }},
		{"permissions.tools (empty map)", func(c *Config) { c.Permissions.Tools = map[string][]providers.Permission{} }},
		{"permissions.other_tools", func(c *Config) { c.Permissions.OtherTools = permsPtr() }},
		{"permissions.other_methods", func(c *Config) { c.Permissions.OtherMethods = permsPtr("x") }},
		{"headers", func(c *Config) { c.Headers = map[string]HeaderValue{"X-A": {Value: "b"}} }},
		{"forward_cookies", func(c *Config) { c.ForwardCookies = true }},
		{"max_concurrent", func(c *Config) { c.MaxConcurrent = 10 }},
		{"answer_limit", func(c *Config) { c.AnswerLimit = 1 << 20 }},
	}
	for _, typ := range []string{"", TypeTodo} {
		for _, f := range fields {
			t.Run(fmt.Sprintf("type %q with %s", typ, f.name), func(t *testing.T) {
				c := Config{Type: typ}
				f.set(&c)
				checkProblems(t, c.Validate(), []wantProblem{{"", `"type": "upstream"`}})
			})
		}
	}
	t.Run("every field at once is still one problem", func(t *testing.T) {
		c := validUpstream()
		c.Type = TypeTodo
		c.MaxConcurrent = -5 // would be a problem of an upstream
		checkProblems(t, c.Validate(), []wantProblem{{"", `only "type" may be set`}})
	})
}

func TestValidateProblems(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []wantProblem
	}{
		// type
		{"unknown type", func(c *Config) { c.Type = "mcp" },
			[]wantProblem{{"type", `unknown server type "mcp" (one of todo, upstream)`}}},
		{"type is case-sensitive", func(c *Config) { c.Type = "Upstream" },
			[]wantProblem{{"type", `unknown server type "Upstream"`}}},
		{"unknown type hides the other problems", func(c *Config) { c.Type = "proxy"; c.URL = "ftp://x"; c.MaxConcurrent = -1 },
			[]wantProblem{{"type", "unknown server type"}}},

		// url
		{"missing url", func(c *Config) { c.URL = "" },
			[]wantProblem{{"url", "required"}}},
		{"ftp url", func(c *Config) { c.URL = "ftp://notes.internal/mcp" },
			[]wantProblem{{"url", "absolute http or https URL"}}},
		{"relative url", func(c *Config) { c.URL = "/mcp" },
			[]wantProblem{{"url", "absolute http or https URL"}}},
		{"url without scheme", func(c *Config) { c.URL = "notes.internal:8080/mcp" },
			[]wantProblem{{"url", "absolute http or https URL"}}},
		{"url without host", func(c *Config) { c.URL = "https:///mcp" },
			[]wantProblem{{"url", "absolute http or https URL"}}},
		{"url with user and password", func(c *Config) { c.URL = "https://bob:secret@notes.internal/mcp" },
			[]wantProblem{{"url", "without user info"}}},
		{"url with user only", func(c *Config) { c.URL = "https://bob@notes.internal/mcp" },
			[]wantProblem{{"url", "without user info"}}},
		{"url with fragment", func(c *Config) { c.URL = "https://notes.internal/mcp#top" },
			[]wantProblem{{"url", "fragment"}}},
		{"url that does not parse", func(c *Config) { c.URL = "http://[::1/mcp" },
			[]wantProblem{{"url", "absolute http or https URL"}}},
		{"opaque url", func(c *Config) { c.URL = "mailto:ops@example.com" },
			[]wantProblem{{"url", "absolute http or https URL"}}},

		// tls
		{"tls cert without key", func(c *Config) { c.TLS = &TLS{CertFile: "/c.pem"} },
			[]wantProblem{{"tls", "both cert_file and key_file"}}},
		{"tls key without cert", func(c *Config) { c.TLS = &TLS{KeyFile: "/k.pem"} },
			[]wantProblem{{"tls", "both cert_file and key_file"}}},
		{"tls with an http url", func(c *Config) { c.URL = "http://notes.internal/mcp"; c.TLS = &TLS{CAFile: "/ca.pem"} },
			[]wantProblem{{"tls", "only used with an https url"}}},
		{"tls with an http url and a cert without key", func(c *Config) { c.URL = "http://notes.internal/mcp"; c.TLS = &TLS{CertFile: "/c.pem"} },
			[]wantProblem{{"tls", "both cert_file and key_file"}, {"tls", "only used with an https url"}}},

		// timeouts (defaults are applied first, so only explicit values count)
		{"connect 0s", func(c *Config) { c.Timeouts.Connect = cfgDur(t, "0s") },
			[]wantProblem{{"timeouts.connect", "from 1ms to 1h0m0s"}}},
		{"connect under 1ms", func(c *Config) { c.Timeouts.Connect = cfgDur(t, "999us") },
			[]wantProblem{{"timeouts.connect", "from 1ms to 1h0m0s"}}},
		{"first_byte 2h", func(c *Config) { c.Timeouts.FirstByte = cfgDur(t, "2h") },
			[]wantProblem{{"timeouts.first_byte", "from 1ms to 1h0m0s"}}},
		{"idle negative", func(c *Config) { c.Timeouts.Idle = cfgDur(t, "-1s") },
			[]wantProblem{{"timeouts.idle", "from 1ms to 1h0m0s"}}},
		{"idle just over 1h", func(c *Config) { c.Timeouts.Idle = cfgDur(t, "1h0m0.001s") },
			[]wantProblem{{"timeouts.idle", "from 1ms to 1h0m0s"}}},
		{"all three timeouts, in order", func(c *Config) {
			c.Timeouts = Timeouts{Connect: cfgDur(t, "0s"), FirstByte: cfgDur(t, "0s"), Idle: cfgDur(t, "0s")}
		}, []wantProblem{{"timeouts.connect", "1ms"}, {"timeouts.first_byte", "1ms"}, {"timeouts.idle", "1ms"}}},

		// identity
		{"unknown identity mode", func(c *Config) { c.Identity.Mode = "jwt" },
			[]wantProblem{{"identity.mode", `unknown identity mode "jwt" (one of assertion, exchange, static, none)`}}},
		{"identity mode is case-sensitive", func(c *Config) { c.Identity.Mode = "Static" },
			[]wantProblem{{"identity.mode", `unknown identity mode "Static"`}}},
		{"static mode without static block", func(c *Config) { c.Identity.Mode = ModeStatic },
			[]wantProblem{{"identity.static", `required with mode "static"`}}},
		{"mode none with static block", func(c *Config) {
			c.Identity = Identity{Mode: ModeNone, Static: &Static{Header: "X-Api-Key", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static", `not used with mode "none"`}}},
		{"header in mode none", func(c *Config) { c.Identity = Identity{Mode: ModeNone, Header: "X-Assertion"} },
			[]wantProblem{{"identity.header", `only used with modes "assertion" and "exchange"`}}},
		{"header in mode static", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Header: "Authorization", Static: &Static{Header: "X-Api-Key", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.header", `only used with modes "assertion" and "exchange"`}}},
		{"assertion header not a header name", func(c *Config) { c.Identity.Header = "X Assertion" },
			[]wantProblem{{"identity.header", "not a valid header name"}}},
		{"assertion header reserved", func(c *Config) { c.Identity.Header = "cookie" },
			[]wantProblem{{"identity.header", "the proxy sets this header itself"}}},
		{"static header same as the default assertion header", func(c *Config) {
			c.Identity.Static = &Static{Header: "authorization", ValueEnv: "KEY"}
		}, []wantProblem{{"identity.static.header", "the assertion is sent in Authorization; send the static credential in another header"}}},
		{"static header same as a custom assertion header", func(c *Config) {
			c.Identity = Identity{Header: "X-Assertion", Static: &Static{Header: "x-ASSERTION", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static.header", "another header"}}},
		{"static header missing", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static.header", "required"}}},
		{"static header not a header name", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api:Key", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static.header", "not a valid header name"}}},
		{"static header reserved", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "host", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static.header", "the proxy sets this header itself"}}},
		{"static prefix with a line break", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", Prefix: "Key\r\nX-Evil: 1", ValueEnv: "KEY"}}
		}, []wantProblem{{"identity.static.prefix", "line breaks"}}},
		{"static secret by env and file", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", ValueEnv: "KEY", ValueFile: "/k"}}
		}, []wantProblem{{"identity.static", "set only one of value_env and value_file"}}},
		{"static secret by neither", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key"}}
		}, []wantProblem{{"identity.static", "set value_env or value_file"}}},
		{"static secret env var starting with a digit", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", ValueEnv: "1KEY"}}
		}, []wantProblem{{"identity.static.value_env", "environment variable name"}}},
		{"static secret env var with a dash", func(c *Config) {
			c.Identity = Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", ValueEnv: "NOTES-KEY"}}
		}, []wantProblem{{"identity.static.value_env", "environment variable name"}}},
		{"unknown mode hides the other identity problems", func(c *Config) {
			c.Identity = Identity{Mode: "mtls", Header: "X Bad", Static: &Static{}}
		}, []wantProblem{{"identity.mode", "unknown identity mode"}}},

		// permissions
		{"no tools and no other_tools", func(c *Config) { c.Permissions = Permissions{} },
			[]wantProblem{{"permissions.tools", "no tool is callable"}}},
		{"empty tools map and no other_tools", func(c *Config) {
			c.Permissions = Permissions{Tools: map[string][]providers.Permission{}, OtherMethods: permsPtr()}
		}, []wantProblem{{"permissions.tools", "set other_tools"}}},
		{"tool name with a space", func(c *Config) { c.Permissions.Tools["bad name"] = nil },
			[]wantProblem{{`permissions.tools["bad name"]`, "a tool name is 1 to 128 characters"}}},
		{"empty tool name", func(c *Config) { c.Permissions.Tools[""] = nil },
			[]wantProblem{{`permissions.tools[""]`, "a tool name is 1 to 128 characters"}}},
		{"non-ASCII tool name", func(c *Config) { c.Permissions.Tools["recherche_é"] = nil },
			[]wantProblem{{`permissions.tools["recherche_é"]`, "a tool name"}}},
		{"tool name of 129 characters", func(c *Config) { c.Permissions.Tools[strings.Repeat("t", 129)] = nil },
			[]wantProblem{{fmt.Sprintf("permissions.tools[%q]", strings.Repeat("t", 129)), "1 to 128"}}},
		{"permission with a space", func(c *Config) { c.Permissions.Tools["search"] = []providers.Permission{"notes read"} },
			[]wantProblem{{`permissions.tools["search"][0]`, `permission "notes read" must be printable ASCII without spaces, quotes or backslashes`}}},
		{"permission with a double quote, second in its list", func(c *Config) {
			c.Permissions.Tools["search"] = []providers.Permission{"notes:read", `notes"read`}
		}, []wantProblem{{`permissions.tools["search"][1]`, "without spaces, quotes"}}},
		{"permission with a backslash", func(c *Config) { c.Permissions.Tools["search"] = []providers.Permission{`notes\read`} },
			[]wantProblem{{`permissions.tools["search"][0]`, "backslashes"}}},
		{"empty permission", func(c *Config) { c.Permissions.Tools["search"] = []providers.Permission{""} },
			[]wantProblem{{`permissions.tools["search"][0]`, "printable ASCII"}}},
		{"permission with a tab", func(c *Config) { c.Permissions.Tools["search"] = []providers.Permission{"notes\tread"} },
			[]wantProblem{{`permissions.tools["search"][0]`, "printable ASCII"}}},
		{"non-ASCII permission", func(c *Config) { c.Permissions.Tools["search"] = []providers.Permission{"notes:lecture-é"} },
			[]wantProblem{{`permissions.tools["search"][0]`, "printable ASCII"}}},
		{"bad tool name and bad permission of the same tool", func(c *Config) {
			c.Permissions.Tools = map[string][]providers.Permission{"a b": {"c d"}}
		}, []wantProblem{{`permissions.tools["a b"]`, "a tool name"}, {`permissions.tools["a b"][0]`, "printable ASCII"}}},
		{"bad other_tools permission", func(c *Config) { c.Permissions.OtherTools = permsPtr("notes:read", "all tools") },
			[]wantProblem{{"permissions.other_tools[1]", `permission "all tools"`}}},
		{"bad other_methods permission", func(c *Config) { c.Permissions.OtherMethods = permsPtr(`"x"`) },
			[]wantProblem{{"permissions.other_methods[0]", "printable ASCII"}}},

		// headers
		{"header value, env and file all empty", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Tenant": {}} },
			[]wantProblem{{`headers["X-Tenant"]`, "set exactly one of value, value_env and value_file"}}},
		{"header value and value_env", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Tenant": {Value: "a", ValueEnv: "B"}} },
			[]wantProblem{{`headers["X-Tenant"]`, "exactly one"}}},
		{"header value_env and value_file", func(c *Config) {
			c.Headers = map[string]HeaderValue{"X-Tenant": {ValueEnv: "B", ValueFile: "/c"}}
		}, []wantProblem{{`headers["X-Tenant"]`, "exactly one"}}},
		{"header with all three", func(c *Config) {
			c.Headers = map[string]HeaderValue{"X-Tenant": {Value: "a", ValueEnv: "B", ValueFile: "/c"}}
		}, []wantProblem{{`headers["X-Tenant"]`, "exactly one"}}},
		{"header value_env not a variable name", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Key": {ValueEnv: "MY KEY"}} },
			[]wantProblem{{`headers["X-Key"].value_env`, "environment variable name"}}},
		{"header value with LF", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Tenant": {Value: "a\nX-Evil: 1"}} },
			[]wantProblem{{`headers["X-Tenant"].value`, "must not contain line breaks or NUL"}}},
		{"header value with CR", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Tenant": {Value: "a\rb"}} },
			[]wantProblem{{`headers["X-Tenant"].value`, "line breaks"}}},
		{"header value with NUL", func(c *Config) { c.Headers = map[string]HeaderValue{"X-Tenant": {Value: "a\x00b"}} },
			[]wantProblem{{`headers["X-Tenant"].value`, "NUL"}}},
		{"headers reported in name order", func(c *Config) {
			c.Headers = map[string]HeaderValue{"X-B": {}, "Host": {Value: "x"}, "X-A": {Value: "1\n"}}
		}, []wantProblem{
			{`headers["Host"]`, "the proxy sets this header itself"},
			{`headers["X-A"].value`, "line breaks"},
			{`headers["X-B"]`, "exactly one"},
		}},

		// max_concurrent (0 is the default)
		{"max_concurrent negative", func(c *Config) { c.MaxConcurrent = -1 },
			[]wantProblem{{"max_concurrent", "must be from 1 to 100000"}}},
		{"max_concurrent too large", func(c *Config) { c.MaxConcurrent = 100001 },
			[]wantProblem{{"max_concurrent", "must be from 1 to 100000"}}},

		// answer_limit (0 is the default)
		{"answer_limit too small", func(c *Config) { c.AnswerLimit = 64<<10 - 1 },
			[]wantProblem{{"answer_limit", "must be from 65536 to 1073741824 bytes"}}},
		{"answer_limit too large", func(c *Config) { c.AnswerLimit = 1<<30 + 1 },
			[]wantProblem{{"answer_limit", "must be from 65536 to 1073741824 bytes"}}},
		{"answer_limit negative", func(c *Config) { c.AnswerLimit = -1 },
			[]wantProblem{{"answer_limit", "or left out for 16777216"}}},

		// several problems, in the order of the fields
		{"problems in field order", func(c *Config) {
			c.URL = "ftp://x"
			c.Timeouts.Idle = cfgDur(t, "0s")
			c.Identity.Mode = "nope"
			c.Permissions = Permissions{}
			c.Headers = map[string]HeaderValue{"Cookie": {Value: "a=b"}}
			c.MaxConcurrent = -1
		}, []wantProblem{
			{"url", "http or https"},
			{"timeouts.idle", "1ms"},
			{"identity.mode", "unknown identity mode"},
			{"permissions.tools", "no tool is callable"},
			{`headers["Cookie"]`, "the proxy sets this header itself"},
			{"max_concurrent", "1 to 100000"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validUpstream()
			tt.change(&c)
			checkProblems(t, c.Validate(), tt.want)
		})
	}
}

func TestValidateHeaderNames(t *testing.T) {
	reserved := []string{"Host", "host", "HOST", "Cookie", "cookie", "COOKIE", "Mcp-Session-Id", "mcp-session-id", "MCP-SESSION-ID",
		"Mcp-Protocol-Version", "Mcp-Method", "Mcp-Name", "Last-Event-ID", "Content-Length", "content-type", "Content-Encoding",
		"Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection",
		"Forwarded", "X-Forwarded-For", "x-forwarded-host", "X-Forwarded-Proto", "Accept", "traceparent", "Tracestate"}
	for _, name := range reserved {
		t.Run("reserved "+name, func(t *testing.T) {
			c := validUpstream()
			c.Headers = map[string]HeaderValue{name: {Value: "x"}}
			checkProblems(t, c.Validate(), []wantProblem{{fmt.Sprintf("headers[%q]", name), "the proxy sets this header itself"}})
		})
	}
	invalid := []string{"", "X Tenant", "X-Tenant:", "X-Ténant", "X(1)", "X/Y", "X-A\r\n", "\"X\"", "X@Y", "X,Y"}
	for _, name := range invalid {
		t.Run(fmt.Sprintf("invalid %q", name), func(t *testing.T) {
			c := validUpstream()
			c.Headers = map[string]HeaderValue{name: {Value: "x"}}
			checkProblems(t, c.Validate(), []wantProblem{{fmt.Sprintf("headers[%q]", name), "not a valid header name"}})
		})
	}
	valid := []string{"X-Tenant", "x-tenant", "X_Under", "X.Dot", "X~!#$%&'*+^`|", "Accept-Language", "Mcp-Session", "Hosts"}
	for _, name := range valid {
		t.Run("valid "+name, func(t *testing.T) {
			c := validUpstream()
			c.Headers = map[string]HeaderValue{name: {Value: "x"}}
			if got := c.Validate(); len(got) != 0 {
				t.Errorf("Validate() = %v, want no problem", got)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Run("upstream gets every default", func(t *testing.T) {
		got := validUpstream().WithDefaults()
		checks := []struct {
			what      string
			got, want any
		}{
			{"type", got.Type, TypeUpstream},
			{"timeouts.connect", durOf(got.Timeouts.Connect), 5 * time.Second},
			{"timeouts.first_byte", durOf(got.Timeouts.FirstByte), 30 * time.Second},
			{"timeouts.idle", durOf(got.Timeouts.Idle), 5 * time.Minute},
			{"identity.mode", got.Identity.Mode, ModeAssertion},
			{"identity.header", got.Identity.Header, "Authorization"},
			{"max_concurrent", got.MaxConcurrent, 256},
			{"answer_limit", got.AnswerLimit, int64(16 << 20)},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
			}
		}
	})
	t.Run("explicit values are kept", func(t *testing.T) {
		c := validUpstream()
		c.Timeouts = Timeouts{Connect: cfgDur(t, "1s"), FirstByte: cfgDur(t, "2s"), Idle: cfgDur(t, "3s")}
		c.Identity.Header = "X-Assertion"
		c.MaxConcurrent = 7
		got := c.WithDefaults()
		if d := durOf(got.Timeouts.Connect); d != time.Second {
			t.Errorf("connect = %v, want 1s", d)
		}
		if d := durOf(got.Timeouts.FirstByte); d != 2*time.Second {
			t.Errorf("first_byte = %v, want 2s", d)
		}
		if d := durOf(got.Timeouts.Idle); d != 3*time.Second {
			t.Errorf("idle = %v, want 3s", d)
		}
		if got.Identity.Header != "X-Assertion" || got.Identity.Mode != ModeAssertion {
			t.Errorf("identity = %+v, want mode assertion in X-Assertion", got.Identity)
		}
		if got.MaxConcurrent != 7 {
			t.Errorf("max_concurrent = %d, want 7", got.MaxConcurrent)
		}
	})
	for _, mode := range []string{ModeStatic, ModeNone} {
		t.Run("no assertion header in mode "+mode, func(t *testing.T) {
			c := validUpstream()
			c.Identity.Mode = mode
			if got := c.WithDefaults().Identity; got.Mode != mode || got.Header != "" {
				t.Errorf("identity = %+v, want mode %q and no header", got, mode)
			}
		})
	}
	t.Run("does not change its receiver", func(t *testing.T) {
		c := validUpstream()
		_ = c.WithDefaults()
		if c.Timeouts.Connect != nil || c.Identity.Mode != "" || c.MaxConcurrent != 0 {
			t.Errorf("receiver changed: %+v", c)
		}
	})

	todo := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero value becomes explicit todo", Config{}, Config{Type: TypeTodo}},
		{"explicit todo unchanged", Config{Type: TypeTodo}, Config{Type: TypeTodo}},
		{"todo with upstream fields gets no defaults", Config{URL: "https://x/mcp", MaxConcurrent: 3},
			Config{Type: TypeTodo, URL: "https://x/mcp", MaxConcurrent: 3}},
		{"unknown type left alone", Config{Type: "other"}, Config{Type: "other"}},
	}
	for _, tt := range todo {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.WithDefaults(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("WithDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}

	idempotent := map[string]Config{
		"zero":         {},
		"todo":         {Type: TypeTodo},
		"upstream":     validUpstream(),
		"static":       {Type: TypeUpstream, URL: "http://x/mcp", Identity: Identity{Mode: ModeStatic}},
		"none":         {Type: TypeUpstream, Identity: Identity{Mode: ModeNone}, MaxConcurrent: 9},
		"some timeout": {Type: TypeUpstream, Timeouts: Timeouts{Idle: cfgDur(t, "1m")}},
	}
	for name, c := range idempotent {
		t.Run("idempotent "+name, func(t *testing.T) {
			once := c.WithDefaults()
			if twice := once.WithDefaults(); !reflect.DeepEqual(twice, once) {
				t.Errorf("WithDefaults twice = %+v, once = %+v", twice, once)
			}
		})
	}
}

func durOf(d *providers.Duration) time.Duration {
	if d == nil {
		return -1
	}
	return time.Duration(*d)
}

func TestPermissionList(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []providers.Permission
	}{
		{"todo (zero value)", Config{}, nil},
		{"todo, even with permissions set", Config{Type: TypeTodo, Permissions: Permissions{
			Tools: map[string][]providers.Permission{"a": {"x"}}}}, nil},
		{"tools by name, then other_tools, then other_methods, each once", Config{Type: TypeUpstream, Permissions: Permissions{
			Tools: map[string][]providers.Permission{
				"zeta":  {"p:b", "p:a"},
				"alpha": {"p:c", "p:a"},
				"mid":   {},
				"beta":  nil,
			},
			OtherTools:   permsPtr("p:d", "p:a"),
			OtherMethods: permsPtr("p:e", "p:d", "p:c"),
		}}, []providers.Permission{"p:c", "p:a", "p:b", "p:d", "p:e"}},
		{"a permission repeated in one list", Config{Type: TypeUpstream, Permissions: Permissions{
			Tools: map[string][]providers.Permission{"t": {"x", "x", "y"}}}}, []providers.Permission{"x", "y"}},
		{"only other_methods", Config{Type: TypeUpstream, Permissions: Permissions{OtherMethods: permsPtr("m")}},
			[]providers.Permission{"m"}},
		{"upstream naming no permission", Config{Type: TypeUpstream, Permissions: Permissions{
			Tools: map[string][]providers.Permission{"t": nil}, OtherTools: permsPtr()}}, []providers.Permission{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.PermissionList()
			if (got == nil) != (tt.want == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("PermissionList() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// policyConfig lists three tools; other_tools and other_methods are set by
// each case.
func policyConfig(otherTools, otherMethods *[]providers.Permission) Config {
	return Config{Type: TypeUpstream, URL: "https://notes.internal/mcp", Permissions: Permissions{
		Tools: map[string][]providers.Permission{
			"search":      {"notes:read"},
			"delete_note": {"notes:read", "notes:write"},
			"public":      {},
		},
		OtherTools:   otherTools,
		OtherMethods: otherMethods,
	}}
}

func TestRequires(t *testing.T) {
	strict := policyConfig(nil, nil)
	open := policyConfig(permsPtr(), permsPtr())
	guarded := policyConfig(permsPtr("notes:admin"), permsPtr("notes:read", "notes:browse"))

	type perms = []providers.Permission
	tests := []struct {
		name         string
		cfg          Config
		method, tool string
		wantRefused  bool
		wantPerms    perms
	}{
		// the lifecycle, answers and tools/list need nothing, whatever the policy
		{"initialize", strict, "initialize", "", false, nil},
		{"server/discover (2026-07-28)", strict, "server/discover", "", false, nil},
		{"server/discover, guarded", guarded, "server/discover", "", false, nil},
		{"ping", strict, "ping", "", false, nil},
		{"tools/list", strict, "tools/list", "", false, nil},
		{"notifications/initialized", strict, "notifications/initialized", "", false, nil},
		{"notifications/cancelled", strict, "notifications/cancelled", "", false, nil},
		{"notifications/progress", guarded, "notifications/progress", "", false, nil},
		{"a response", strict, "", "", false, nil},
		{"a response naming a tool", strict, "", "delete_note", false, nil},

		// tools/call
		{"listed tool", strict, "tools/call", "search", false, perms{"notes:read"}},
		{"listed tool needing two", strict, "tools/call", "delete_note", false, perms{"notes:read", "notes:write"}},
		{"listed tool with an empty list", strict, "tools/call", "public", false, nil},
		{"unlisted tool without other_tools", strict, "tools/call", "export", true, nil},
		{"tool name is case-sensitive", strict, "tools/call", "Search", true, nil},
		{"no tool name", strict, "tools/call", "", true, nil},
		{"unlisted tool with other_tools", guarded, "tools/call", "export", false, perms{"notes:admin"}},
		{"listed tool ignores other_tools", guarded, "tools/call", "search", false, perms{"notes:read"}},
		{"unlisted tool with empty other_tools", open, "tools/call", "export", false, nil},

		// every other method
		{"resources/read without other_methods", strict, "resources/read", "", true, nil},
		{"resources/list without other_methods", strict, "resources/list", "", true, nil},
		{"prompts/get without other_methods", strict, "prompts/get", "", true, nil},
		{"completion/complete without other_methods", strict, "completion/complete", "", true, nil},
		{"logging/setLevel without other_methods", strict, "logging/setLevel", "", true, nil},
		{"unknown method without other_methods", strict, "notes/secret", "", true, nil},
		{"resources/read with other_methods", guarded, "resources/read", "", false, perms{"notes:read", "notes:browse"}},
		{"prompts/get with other_methods", guarded, "prompts/get", "", false, perms{"notes:read", "notes:browse"}},
		{"completion/complete with other_methods", guarded, "completion/complete", "", false, perms{"notes:read", "notes:browse"}},
		{"resources/read with empty other_methods", open, "resources/read", "", false, nil},
		{"prompts/get with empty other_methods", open, "prompts/get", "", false, nil},
		{"completion/complete with empty other_methods", open, "completion/complete", "", false, nil},
		{"other_methods does not cover unlisted tools", policyConfig(nil, permsPtr()), "tools/call", "export", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Requires(tt.method, tt.tool)
			if got.Refused != tt.wantRefused || !slices.Equal(got.Permissions, tt.wantPerms) {
				t.Errorf("Requires(%q, %q) = %+v, want {Refused:%v Permissions:%v}", tt.method, tt.tool, got, tt.wantRefused, tt.wantPerms)
			}
		})
	}
}

func TestMayCall(t *testing.T) {
	reader := &providers.Principal{Subject: "alice", Permissions: map[providers.Permission]bool{
		"notes:read":  true,
		"notes:write": false, // present but not granted
	}}
	admin := &providers.Principal{Subject: "root", Permissions: map[providers.Permission]bool{
		"notes:read": true, "notes:write": true, "notes:admin": true,
	}}
	nobody := &providers.Principal{Subject: "bob"}

	strict := policyConfig(nil, nil)
	guarded := policyConfig(permsPtr("notes:admin"), nil)
	open := policyConfig(permsPtr(), nil)
	tests := []struct {
		name string
		cfg  Config
		p    *providers.Principal
		tool string
		want bool
	}{
		{"holds the one permission", strict, reader, "search", true},
		{"lacks one of two", strict, reader, "delete_note", false},
		{"holds both", strict, admin, "delete_note", true},
		{"no permissions, tool needing one", strict, nobody, "search", false},
		{"no permissions, tool needing none", strict, nobody, "public", true},
		{"nil principal, tool needing none", strict, nil, "public", true},
		{"nil principal, tool needing one", strict, nil, "search", false},
		{"unlisted tool, no other_tools, even for admin", strict, admin, "export", false},
		{"unlisted tool, other_tools not held", guarded, reader, "export", false},
		{"unlisted tool, other_tools held", guarded, admin, "export", true},
		{"unlisted tool, empty other_tools", open, nobody, "export", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.mayCall(tt.p, tt.tool); got != tt.want {
				t.Errorf("mayCall(%v, %q) = %v, want %v", tt.p, tt.tool, got, tt.want)
			}
		})
	}
}

// An extra header may not replace the identity: the assertion's header,
// or the static credential's.
func TestValidateHeadersCannotReplaceIdentity(t *testing.T) {
	base := func() Config {
		return Config{Type: TypeUpstream, URL: "http://notes.internal/mcp",
			Permissions: Permissions{Tools: map[string][]providers.Permission{"search": nil}}}
	}
	for _, tc := range []struct {
		name     string
		identity Identity
		header   string
	}{
		{"the default assertion header", Identity{}, "authorization"},
		{"a custom assertion header", Identity{Header: "X-Assertion"}, "X-ASSERTION"},
		{"the static credential's header", Identity{Mode: ModeStatic, Static: &Static{Header: "X-Api-Key", ValueEnv: "K"}}, "x-api-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			c.Identity = tc.identity
			c.Headers = map[string]HeaderValue{tc.header: {Value: "x"}}
			probs := c.Validate()
			want := fmt.Sprintf("headers[%q]", tc.header)
			if len(probs) != 1 || probs[0].Path != want || !strings.Contains(probs[0].Message, "identity block sets this header") {
				t.Errorf("Validate() = %v, want one problem at %s", probs, want)
			}
		})
	}
	c := base()
	c.Identity = Identity{Mode: ModeNone}
	c.Headers = map[string]HeaderValue{"Authorization": {Value: "Bearer fixed"}}
	if probs := c.Validate(); len(probs) != 0 {
		t.Errorf("mode none with an Authorization header: %v, want none", probs)
	}
}
