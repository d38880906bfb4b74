// Package upstream is a tenant's MCP server when the tenant fronts an MCP
// server a team runs itself: its "server" block (Config: defaults and
// validation, owned here alone, as package providers owns the provider
// block), the per-tool permission policy, the identity the upstream
// receives in place of the client's token (a short-lived JWT the gateway
// signs, a static credential, or nothing), and the Streamable HTTP proxy
// that forwards requests and streams answers back event by event.
//
// It knows nothing of tenants or the edge: the edge (package mcp) verifies
// the token, asks Policy what a call needs, decides, and hands the request
// and the verified principal to Server.Forward.
package upstream

import (
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Server types of a tenant (Config.Type).
const (
	// TypeTodo is the built-in todo server, the default.
	TypeTodo = "todo"
	// TypeUpstream is an MCP server elsewhere, reached over Streamable HTTP.
	TypeUpstream = "upstream"
)

// Identity modes (Identity.Mode): what the upstream learns of the caller.
// The client's own token is never sent, in any mode.
const (
	// ModeAssertion sends a short-lived JWT the gateway signs for each
	// caller (Signer), the default.
	ModeAssertion = "assertion"
	// ModeExchange sends a token the tenant's issuer issued for the
	// upstream in exchange for the client's (RFC 8693, Identity.Exchange).
	ModeExchange = "exchange"
	// ModeStatic sends only the fixed credential of Identity.Static.
	ModeStatic = "static"
	// ModeNone adds nothing: the upstream trusts the network.
	ModeNone = "none"
)

var (
	serverTypes   = []string{TypeTodo, TypeUpstream}
	identityModes = []string{ModeAssertion, ModeExchange, ModeStatic, ModeNone}
)

// Defaults and bounds.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultFirstByteTimeout = 30 * time.Second
	// DefaultIdleTimeout ends a stream (SSE answer or GET stream) on which
	// the upstream sent nothing for this long. Servers that keep a GET
	// stream open for notifications should send keep-alives more often.
	DefaultIdleTimeout   = 5 * time.Minute
	DefaultMaxConcurrent = 256
	maxTimeout           = time.Hour
	maxConcurrent        = 100000
	minBodyLimit         = 1 << 10
	maxBodyLimit         = 64 << 20
	// DefaultAnswerLimit bounds what the gateway holds of an answer it
	// filters (Config.AnswerLimit).
	DefaultAnswerLimit = 16 << 20
	minAnswerLimit     = 64 << 10
	maxAnswerLimit     = 1 << 30
	// DefaultHeader carries the assertion as "Bearer <jwt>", so an upstream
	// that is an OAuth resource server verifies it as an access token.
	DefaultHeader = "Authorization"
)

// Config is a tenant's "server" block. The zero value is the todo server.
type Config struct {
	// Type is "todo" (default) or "upstream"; every other field belongs to
	// an upstream.
	Type string `json:"type,omitempty"`
	// URL is the upstream's MCP endpoint, http or https, exactly as it
	// answers; it is also the assertion's audience.
	URL string `json:"url,omitempty"`
	// TLS trusts a private CA and presents a client certificate, by file.
	TLS *TLS `json:"tls,omitempty"`
	// Timeouts bound connecting, the first byte of an answer, and silence
	// on a stream.
	Timeouts Timeouts `json:"timeouts,omitzero"`
	// Identity is what the upstream is told of the caller.
	Identity Identity `json:"identity,omitzero"`
	// Permissions map the upstream's tools and methods to the permissions
	// a caller needs.
	Permissions Permissions `json:"permissions,omitzero"`
	// Headers are added to every request to the upstream; a value is given
	// inline or, where secret, by reference (value_env, value_file).
	Headers map[string]HeaderValue `json:"headers,omitempty"`
	// ForwardCookies passes the client's Cookie header on; off by default.
	ForwardCookies bool `json:"forward_cookies,omitempty"`
	// BodyLimit caps the requests bodies the tenant takes, in bytes, in
	// place of http.body_limit (1 KiB to 64 MiB); 0: http.body_limit.
	BodyLimit int64 `json:"body_limit,omitempty"`
	// AnswerLimit caps, in bytes, what the gateway holds of one answer it
	// filters: a list, server/discover or a 2026-07-28 resources/read read
	// whole, or one event of a filtered SSE stream (64 KiB to 1 GiB;
	// default DefaultAnswerLimit). Over it the client gets 502: the
	// gateway never passes what it could not check. Raise it for an
	// upstream whose resources are larger; each such answer in flight
	// holds up to two to three times this much memory (the answer as
	// read, and the copy sent with its changes).
	AnswerLimit int64 `json:"answer_limit,omitempty"`
	// MaxConcurrent caps the requests and streams open to the upstream at
	// once on each instance; past it a request is answered 503. Default
	// DefaultMaxConcurrent.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
}

// TLS names the files of the upstream connection's TLS settings.
type TLS struct {
	// CAFile is a PEM bundle of the CAs trusted for the upstream (instead
	// of the system's).
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate and key, PEM.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// Timeouts of the connection to the upstream; each defaults when omitted.
type Timeouts struct {
	Connect   *providers.Duration `json:"connect,omitempty"`
	FirstByte *providers.Duration `json:"first_byte,omitempty"`
	Idle      *providers.Duration `json:"idle,omitempty"`
}

// Identity is the "identity" block.
type Identity struct {
	// Mode is assertion (default), exchange, static or none.
	Mode string `json:"mode,omitempty"`
	// Header carries the assertion or the exchanged token; default
	// Authorization, as "Bearer <token>". Any other header carries the
	// bare token.
	Header string `json:"header,omitempty"`
	// Exchange is the token exchange at the tenant's issuer: required in
	// mode exchange.
	Exchange *Exchange `json:"exchange,omitempty"`
	// Static is a fixed credential: required in mode static, allowed with
	// an assertion in another header.
	Static *Static `json:"static,omitempty"`
}

// Static is a fixed credential sent in a header: Prefix then the secret.
type Static struct {
	Header    string `json:"header"`
	Prefix    string `json:"prefix,omitempty"`
	ValueEnv  string `json:"value_env,omitempty"`
	ValueFile string `json:"value_file,omitempty"`
}

// HeaderValue is an extra header's value: Value inline, or by reference.
type HeaderValue struct {
	Value     string `json:"value,omitempty"`
	ValueEnv  string `json:"value_env,omitempty"`
	ValueFile string `json:"value_file,omitempty"`
}

// Permissions is the "permissions" block: what each tool and method needs.
type Permissions struct {
	// Tools maps a tool name to the permissions a call needs, all of them;
	// an empty list lets any authenticated caller call it.
	Tools map[string][]providers.Permission `json:"tools,omitempty"`
	// OtherTools is what a tool Tools does not list needs; left out, such
	// tools are refused and left out of tools/list.
	OtherTools *[]providers.Permission `json:"other_tools,omitempty"`
	// OtherMethods is what every method but the lifecycle ones (initialize,
	// ping, notifications, tools/list) and tools/call needs: resources,
	// prompts, completion, logging, subscriptions, tasks. Left out, they
	// are refused; an empty list lets any authenticated caller use them.
	OtherMethods *[]providers.Permission `json:"other_methods,omitempty"`
	// Forward are permissions the gateway checks for no call, but passes
	// on in the assertion when the caller holds them, for an upstream that
	// decides with them itself (the todo server's read and delete decide
	// whose todos a caller sees and deletes).
	Forward []providers.Permission `json:"forward,omitempty"`
}

// IsUpstream reports whether c names an upstream server (nil, the todo
// server, does not).
func (c *Config) IsUpstream() bool { return c != nil && c.Type == TypeUpstream }

// TypeOf is the server type c names: TypeTodo for nil or an empty type.
func (c *Config) TypeOf() string {
	if c == nil || c.Type == "" {
		return TypeTodo
	}
	return c.Type
}

// PermissionList is every permission the policy names, each once: tools in
// name order, then other_tools, other_methods and forward. It is the tenant's
// permission vocabulary (providers.Settings.Permissions); nil for the todo
// server, whose permissions are providers.Permissions.
func (c *Config) PermissionList() []providers.Permission {
	if !c.IsUpstream() {
		return nil
	}
	out := []providers.Permission{}
	add := func(perms []providers.Permission) {
		for _, p := range perms {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Permissions.Tools)) {
		add(c.Permissions.Tools[name])
	}
	if c.Permissions.OtherTools != nil {
		add(*c.Permissions.OtherTools)
	}
	if c.Permissions.OtherMethods != nil {
		add(*c.Permissions.OtherMethods)
	}
	add(c.Permissions.Forward)
	return out
}

// WithDefaults fills what an upstream's block leaves out; the todo
// server's block is returned as it is, but for an explicit type.
func (c Config) WithDefaults() Config {
	if c.Type == "" {
		c.Type = TypeTodo
	}
	if !c.IsUpstream() {
		return c
	}
	dur := func(d *providers.Duration, def time.Duration) *providers.Duration {
		if d != nil {
			return d
		}
		v := providers.Duration(def)
		return &v
	}
	c.Timeouts.Connect = dur(c.Timeouts.Connect, DefaultConnectTimeout)
	c.Timeouts.FirstByte = dur(c.Timeouts.FirstByte, DefaultFirstByteTimeout)
	c.Timeouts.Idle = dur(c.Timeouts.Idle, DefaultIdleTimeout)
	if c.Identity.Mode == "" {
		c.Identity.Mode = ModeAssertion
	}
	if c.Identity.Header == "" && c.Identity.sendsToken() {
		c.Identity.Header = DefaultHeader
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.AnswerLimit == 0 {
		c.AnswerLimit = DefaultAnswerLimit
	}
	return c
}

// Problems validates c: none for nil, the todo server.
func (c *Config) Problems() []Problem {
	if c == nil {
		return nil
	}
	return c.Validate()
}

// Problem is one thing wrong with a Config; Path is relative to the
// "server" block.
type Problem = providers.Problem

var toolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,128}$`)

// Validate reports every problem of c with its defaults applied, in the
// order of the fields.
func (c Config) Validate() []Problem {
	c = c.WithDefaults()
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(serverTypes, c.Type) {
		add("type", "unknown server type %q (one of %s)", c.Type, strings.Join(serverTypes, ", "))
		return probs
	}
	if !c.IsUpstream() {
		if !c.isTodoOnly() {
			add("", `only "type" may be set for the todo server; the other fields configure an upstream ("type": "upstream")`)
		}
		return probs
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		add("url", `required: the upstream's MCP endpoint, such as "http://notes-mcp.internal:8080/mcp"`)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "":
		add("url", "must be an absolute http or https URL without user info or fragment")
	}
	if c.TLS != nil {
		if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			add("tls", "set both cert_file and key_file for a client certificate, or neither")
		}
		if u != nil && u.Scheme == "http" {
			add("tls", "only used with an https url")
		}
	}
	for _, t := range []struct {
		name string
		d    *providers.Duration
	}{{"connect", c.Timeouts.Connect}, {"first_byte", c.Timeouts.FirstByte}, {"idle", c.Timeouts.Idle}} {
		if d := time.Duration(*t.d); d < time.Millisecond || d > maxTimeout {
			add("timeouts."+t.name, "must be from 1ms to %s", maxTimeout)
		}
	}
	probs = append(probs, c.Identity.validate()...)
	probs = append(probs, c.Permissions.validate()...)
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		hp := fmt.Sprintf("headers[%q]", name)
		if msg := checkHeaderName(name); msg != "" {
			add(hp, "%s", msg)
		}
		if c.Identity.carries(name) {
			add(hp, "the identity block sets this header (%s): it cannot be set here too", name)
		}
		v := c.Headers[name]
		set := 0
		for _, s := range []string{v.Value, v.ValueEnv, v.ValueFile} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			add(hp, "set exactly one of value, value_env and value_file")
		} else if v.Value == "" {
			probs = append(probs, providers.CheckSecretRef(hp, "value", v.ValueEnv, v.ValueFile)...)
		}
		if strings.ContainsAny(v.Value, "\r\n\x00") {
			add(hp+".value", "must not contain line breaks or NUL")
		}
	}
	if c.BodyLimit != 0 && (c.BodyLimit < minBodyLimit || c.BodyLimit > maxBodyLimit) {
		add("body_limit", "must be from %d to %d bytes, or left out for http.body_limit", minBodyLimit, maxBodyLimit)
	}
	if c.MaxConcurrent < 1 || c.MaxConcurrent > maxConcurrent {
		add("max_concurrent", "must be from 1 to %d", maxConcurrent)
	}
	if c.AnswerLimit < minAnswerLimit || c.AnswerLimit > maxAnswerLimit {
		add("answer_limit", "must be from %d to %d bytes, or left out for %d", minAnswerLimit, maxAnswerLimit, DefaultAnswerLimit)
	}
	return probs
}

func (c Config) isTodoOnly() bool {
	z := Config{Type: c.Type}
	return c.URL == z.URL && c.TLS == nil && c.Timeouts == z.Timeouts && c.Identity.Mode == "" && c.Identity.Header == "" &&
		c.Identity.Static == nil && c.Identity.Exchange == nil && c.Permissions.Tools == nil && c.Permissions.OtherTools == nil &&
		c.Permissions.OtherMethods == nil && c.Permissions.Forward == nil && c.Headers == nil && !c.ForwardCookies && c.MaxConcurrent == 0 &&
		c.BodyLimit == 0 && c.AnswerLimit == 0
}

// reservedHeaders are the headers the proxy owns: the configuration may
// not set them.
var reservedHeaders = []string{"Host", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Connection",
	"Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Cookie", "Forwarded",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Mcp-Session-Id", "Mcp-Protocol-Version", "Mcp-Method",
	"Mcp-Name", "Last-Event-Id", "Accept", "Traceparent", "Tracestate"}

var headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func checkHeaderName(name string) string {
	if !headerNamePattern.MatchString(name) {
		return "not a valid header name"
	}
	if slices.Contains(reservedHeaders, textproto.CanonicalMIMEHeaderKey(name)) {
		return "the proxy sets this header itself"
	}
	return ""
}

// sendsToken reports whether the mode sends a token per caller in Header.
func (id Identity) sendsToken() bool { return id.Mode == ModeAssertion || id.Mode == ModeExchange }

// carries reports whether the identity sends header name.
func (id Identity) carries(name string) bool {
	return (id.sendsToken() && strings.EqualFold(name, id.Header)) ||
		(id.Static != nil && strings.EqualFold(name, id.Static.Header))
}

func (id Identity) validate() []Problem {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{Path: "identity." + path, Message: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(identityModes, id.Mode) {
		add("mode", "unknown identity mode %q (one of %s)", id.Mode, strings.Join(identityModes, ", "))
		return probs
	}
	if !id.sendsToken() && id.Header != "" {
		add("header", "only used with modes %q and %q (the header of the token sent)", ModeAssertion, ModeExchange)
	}
	switch {
	case id.Mode == ModeExchange && id.Exchange == nil:
		add("exchange", `required with mode "exchange": {"client_id": "gateway", "client_secret_env": "EXCHANGE_SECRET"}`)
	case id.Mode != ModeExchange && id.Exchange != nil:
		add("exchange", `only used with mode "exchange"`)
	case id.Exchange != nil:
		probs = append(probs, id.Exchange.validate()...)
	}
	if id.sendsToken() {
		if msg := checkHeaderName(id.Header); msg != "" && !strings.EqualFold(id.Header, DefaultHeader) {
			add("header", "%s", msg)
		}
	}
	switch {
	case id.Mode == ModeStatic && id.Static == nil:
		add("static", `required with mode "static": {"header": "X-Api-Key", "value_env": "NOTES_API_KEY"}`)
	case id.Mode == ModeNone && id.Static != nil:
		add("static", `not used with mode "none"; use mode "static"`)
	}
	if s := id.Static; s != nil {
		if s.Header == "" {
			add("static.header", "required: the header that carries the credential")
		} else if msg := checkHeaderName(s.Header); msg != "" && !strings.EqualFold(s.Header, DefaultHeader) {
			add("static.header", "%s", msg)
		}
		if id.sendsToken() && strings.EqualFold(s.Header, id.Header) {
			add("static.header", "the %s is sent in %s; send the static credential in another header", id.Mode, id.Header)
		}
		if strings.ContainsAny(s.Prefix, "\r\n\x00") {
			add("static.prefix", "must not contain line breaks or NUL")
		}
		for _, p := range providers.CheckSecretRef("identity.static", "value", s.ValueEnv, s.ValueFile) {
			probs = append(probs, p)
		}
	}
	return probs
}

func (ps Permissions) validate() []Problem {
	var probs []Problem
	checkList := func(path string, perms []providers.Permission) {
		for i, p := range perms {
			if !providers.IsScopeToken(string(p)) {
				probs = append(probs, Problem{Path: fmt.Sprintf("%s[%d]", path, i),
					Message: fmt.Sprintf("permission %q must be printable ASCII without spaces, quotes or backslashes (by default it is also the scope that grants it)", p)})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ps.Tools)) {
		tp := fmt.Sprintf("permissions.tools[%q]", name)
		if !toolNamePattern.MatchString(name) {
			probs = append(probs, Problem{Path: tp, Message: "a tool name is 1 to 128 characters from A-Z, a-z, 0-9, _ - . /"})
		}
		checkList(tp, ps.Tools[name])
	}
	if ps.OtherTools != nil {
		checkList("permissions.other_tools", *ps.OtherTools)
	}
	if ps.OtherMethods != nil {
		checkList("permissions.other_methods", *ps.OtherMethods)
	}
	checkList("permissions.forward", ps.Forward)
	if len(ps.Tools) == 0 && ps.OtherTools == nil {
		probs = append(probs, Problem{Path: "permissions.tools",
			Message: `no tool is callable: map tool names to the permissions they need ({"search": ["notes:read"]}), or set other_tools`})
	}
	return probs
}
