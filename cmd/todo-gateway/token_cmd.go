package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/todo-gateway/todo-gateway/mcp"
	"github.com/todo-gateway/todo-gateway/mcp/todo"
	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

type tokenOptions struct {
	config, tenant, format string
	timeout                time.Duration
}

func tokenFlags() (*flag.FlagSet, *tokenOptions) {
	o := &tokenOptions{}
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "the configuration `file` (JSON) the gateway serves")
	fs.StringVar(&o.tenant, "tenant", "", "the `id` of the tenant the token is presented to")
	fs.StringVar(&o.format, "format", "text", "output `format`: text or json")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "give up on the authorization server after this `duration`")
	return fs, o
}

func tokenUsage(w io.Writer) {
	fs, _ := tokenFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway token --config FILE --tenant ID [--format text|json] < token

Token explains what the gateway does with an access token presented to a
tenant: every check in the order the verifier makes it (header, algorithm,
key, signature, issuer, expiry, audience, scopes, ... or the introspection
call for an opaque token), what the token may do with each tool, and the
answer the gateway would give. It runs the verifier the gateway serves with,
so it contacts the tenant's authorization server (discovery, JWKS,
introspection) like the first request after a start would.

The token is read from stdin, with or without a "Bearer " prefix. It is never
printed, nor is any secret.

Exit status: 0 the token is accepted, 1 it is refused (or the authorization
server cannot be reached), 2 the command could not run (usage, configuration,
unknown tenant, no token on stdin).

Flags:
`)
	printFlags(w, fs)
}

func runToken(args []string, stdout, stderr io.Writer) int {
	// Someone typing "todo-gateway token ..." in a terminal would otherwise
	// face a silent wait for stdin.
	if stdinIsTerminal() {
		fmt.Fprintln(stderr, "todo-gateway token: paste the token, then press Enter and Ctrl-D")
	}
	return explainToken(args, os.Stdin, stdout, stderr)
}

// stdinIsTerminal approximates isatty without a dependency: a character
// device other than /dev/null.
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// explainToken is runToken with stdin given, so tests can drive it.
func explainToken(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, o := tokenFlags()
	if code, done := parseFlags(fs, args, tokenUsage, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return tokenUsageError(stderr, fmt.Sprintf("unexpected argument %q (the token is read from stdin)", fs.Arg(0)))
	case o.config == "":
		return tokenUsageError(stderr, "--config FILE is required")
	case o.tenant == "":
		return tokenUsageError(stderr, "--tenant ID is required")
	case o.format != "text" && o.format != "json":
		return tokenUsageError(stderr, fmt.Sprintf("--format must be text or json, not %q", o.format))
	case o.timeout <= 0:
		return tokenUsageError(stderr, "--timeout must be positive")
	}

	t, code := loadTenant(o.config, o.tenant, stderr)
	if t == nil {
		return code
	}
	token, err := readToken(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "todo-gateway token: %v\n", err)
		return exitUsage
	}

	rep := explain(t, token, o.timeout)
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.writeText(stdout)
	}
	if rep.Decision.Accepted {
		return exitOK
	}
	return exitFail
}

func tokenUsageError(stderr io.Writer, msg string) int {
	return usageError(stderr, "token", tokenUsage, msg)
}

// loadTenant loads the file as serve does and picks the tenant; a nil
// tenant comes with the exit code.
func loadTenant(path, id string, stderr io.Writer) (*tenants.Tenant, int) {
	cfg := loadFile(path, stderr)
	if cfg == nil {
		return nil, exitUsage
	}
	for i := range cfg.Tenants {
		if cfg.Tenants[i].ID == id {
			return &cfg.Tenants[i], exitOK
		}
	}
	fmt.Fprintf(stderr, "todo-gateway token: %s has no tenant %q (it has: %s)\n", path, id, tenantIDList(cfg))
	return nil, exitUsage
}

// readToken reads the token from r: surrounding whitespace and a "Bearer "
// prefix (as copied from an Authorization header) are dropped. Anything
// else is left for the verifier to judge, as the gateway would.
func readToken(r io.Reader) (string, error) {
	// A little over the verifier's limit, so that an oversized token is
	// refused by the verifier (with its reason) rather than cut here.
	b, err := io.ReadAll(io.LimitReader(r, providers.MaxTokenBytes+1024))
	if err != nil {
		return "", fmt.Errorf("reading the token from stdin: %w", err)
	}
	s := strings.TrimSpace(string(b))
	const scheme = "Bearer"
	if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) &&
		(len(s) == len(scheme) || s[len(scheme)] == ' ' || s[len(scheme)] == '\t') {
		s = strings.TrimSpace(s[len(scheme):])
	}
	if s == "" {
		return "", errors.New("no token on stdin")
	}
	return s, nil
}

// tokenReport is everything the command found out; the text and JSON
// outputs are two renderings of it.
type tokenReport struct {
	Tenant    string                     `json:"tenant"`
	Resource  string                     `json:"resource"`
	Provider  providers.Kind             `json:"provider"`
	Issuer    string                     `json:"issuer"`
	TokenMode providers.TokenMode        `json:"token_mode"`
	Audience  providers.AudienceStrategy `json:"audience_strategy"`
	Steps     []providers.Step           `json:"steps"`
	Principal *principalView             `json:"principal,omitempty"`
	Tools     []toolVerdict              `json:"tools,omitempty"`
	Decision  decision                   `json:"decision"`
}

type principalView struct {
	Subject     string    `json:"subject"`
	ClientID    string    `json:"client_id,omitempty"`
	Scopes      []string  `json:"scopes"`
	Roles       []string  `json:"roles,omitempty"` // values of the tenant's role or group claim
	Permissions []string  `json:"permissions"`
	Expiry      time.Time `json:"expiry,omitzero"`
	Kind        string    `json:"kind"`
}

// toolVerdict is what the token may do with one tool.
type toolVerdict struct {
	Tool string `json:"tool"`
	// Access: create-todo "allowed" or "refused"; get-todos "all" or "own";
	// delete-todo "any", "own" or "none".
	Access string `json:"access"`
	// Status is the HTTP answer when the gateway refuses the call itself
	// (403 step-up), else 0.
	Status int    `json:"status,omitempty"`
	Detail string `json:"detail"`
}

type decision struct {
	Accepted bool `json:"accepted"`
	// Status, Error and Reason are the gateway's answer to a refused token:
	// the HTTP status, the RFC 6750 error code and the error_description.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// explain verifies token as the tenant's gateway would, with a trace.
func explain(t *tenants.Tenant, token string, timeout time.Duration) *tokenReport {
	rep := &tokenReport{
		Tenant:    t.ID,
		Resource:  t.Resource,
		Provider:  t.Provider.Type,
		Issuer:    t.Provider.Issuer,
		TokenMode: t.Provider.Token,
		Audience:  t.Audience.Strategy,
	}
	// The verifier serve builds for the tenant, or the stand-in that
	// refuses every token when it could not be built. Its warnings would
	// repeat the trace, so they are dropped.
	v, problem := mcp.BuildVerifier(t, mcp.ProviderVerifier(providers.WithLogger(slog.New(slog.DiscardHandler))))
	if c, ok := v.(interface{ Close() error }); ok {
		defer c.Close()
	}
	if problem != "" {
		rep.Steps = append(rep.Steps, providers.Step{Name: "configuration", OK: false, Detail: problem})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tr := &providers.Trace{}
	p, err := v.Verify(providers.WithTrace(ctx, tr), token)
	rep.Steps = append(rep.Steps, tr.Steps()...)
	if err != nil {
		rep.Decision = refusal(err)
		return rep
	}
	rep.Decision = decision{Accepted: true}
	rep.Principal = &principalView{Subject: p.Subject, ClientID: p.ClientID, Scopes: p.Scopes, Roles: p.Roles, Expiry: p.Expiry, Kind: string(p.Kind)}
	if rep.Principal.Scopes == nil {
		rep.Principal.Scopes = []string{}
	}
	rep.Principal.Permissions = []string{}
	for _, perm := range t.ProviderSettings().PermissionList() {
		if p.Has(perm) {
			rep.Principal.Permissions = append(rep.Principal.Permissions, string(perm))
		}
	}
	rep.Tools = toolVerdicts(t, p)
	return rep
}

// refusal is the gateway's answer to a verification error.
func refusal(err error) decision {
	status, code, reason := mcp.VerificationAnswer(err)
	return decision{Status: status, Error: code, Reason: reason}
}

// toolVerdicts applies the tools' policy to the principal: for a todo
// tenant, package todo's tool table, the same step-up check and policy
// functions the tools run; for an upstream tenant, its permissions block.
func toolVerdicts(t *tenants.Tenant, p *providers.Principal) []toolVerdict {
	if t.Server.IsUpstream() {
		return upstreamToolVerdicts(t, p)
	}
	var out []toolVerdict
	for _, tool := range todo.Tools {
		if tool.Requires != "" && !p.Has(tool.Requires) {
			out = append(out, refusedTool(t, p, tool.Name, tool.Requires))
			continue
		}
		access, detail := tool.Explain(p, t.Scope)
		out = append(out, toolVerdict{Tool: tool.Name, Access: access, Detail: detail})
	}
	return out
}

// upstreamToolVerdicts explains an upstream tenant's tools: each tool its
// table lists, then the rule for the others.
func upstreamToolVerdicts(t *tenants.Tenant, p *providers.Principal) []toolVerdict {
	var out []toolVerdict
	names := slices.Sorted(maps.Keys(t.Server.Permissions.Tools))
	if t.Server.Permissions.OtherTools != nil {
		names = append(names, "") // the tools the table does not list
	}
	for _, name := range names {
		label := name
		if name == "" {
			label = "(other tools)"
		}
		need := t.Server.Requires("tools/call", name)
		missing := slices.DeleteFunc(slices.Clone(need.Permissions), p.Has)
		if len(missing) > 0 {
			v := refusedTool(t, p, name, missing[0])
			v.Tool = label
			out = append(out, v)
			continue
		}
		out = append(out, toolVerdict{Tool: label, Access: "allowed",
			Detail: fmt.Sprintf("forwarded to %s with identity %s", t.Server.URL, t.Server.Identity.Mode)})
	}
	return out
}

// refusedTool is the verdict on a tool call that lacks perm: the 403
// step-up, or the tool error of a tenant that chose it.
func refusedTool(t *tenants.Tenant, p *providers.Principal, tool string, perm providers.Permission) toolVerdict {
	scope := t.Scope(perm)
	var detail string
	status := http.StatusForbidden
	if t.MissingPermission == tenants.MissingPermissionToolError {
		status = http.StatusOK
		detail = fmt.Sprintf("200 with a tool error (missing_permission tool_error): the token lacks %s", scope)
	} else {
		// What the challenge names depends on the protocol version
		// the client speaks (see "Step-up" in docs/security.md).
		before, from := mcp.StepUpScope(t, p, "2025-11-25", tool), mcp.StepUpScope(t, p, "2026-07-28", tool)
		if before == from {
			detail = fmt.Sprintf("403 insufficient_scope, scope=%q: the client must ask for %s (step-up)", from, scope)
		} else {
			detail = fmt.Sprintf("403 insufficient_scope, scope=%q to clients before 2026-07-28, scope=%q from 2026-07-28: the client must ask for %s (step-up)",
				before, from, scope)
		}
	}
	if rg := t.Claims.Roles; rg != nil {
		if by := rg.Grantors(perm); len(by) > 0 {
			detail += fmt.Sprintf(", or the user needs %s %s", rg.Claim, strings.Join(by, " or "))
		}
	}
	return toolVerdict{Tool: tool, Access: "refused", Status: status, Detail: detail}
}

// Marks for passed and failed checks: they survive copying into a README
// and stand out in a terminal.
const (
	markOK   = "✓"
	markFail = "✗"
)

func (r *tokenReport) writeText(w io.Writer) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Tenant %s (%s)\n", r.Tenant, r.Resource)
	fmt.Fprintf(&b, "  provider  %s, issuer %s, token mode %s\n", r.Provider, r.Issuer, r.TokenMode)
	fmt.Fprintf(&b, "  audience  strategy %s\n", r.Audience)

	b.WriteString("\nChecks\n")
	width := 0
	for _, s := range r.Steps {
		width = max(width, utf8.RuneCountInString(s.Name))
	}
	for _, s := range r.Steps {
		mark := markOK
		if !s.OK {
			mark = markFail
		}
		fmt.Fprintf(&b, "  %s %-*s  %s\n", mark, width, s.Name, s.Detail)
	}

	b.WriteString("\nTools\n")
	if len(r.Tools) == 0 {
		b.WriteString("  none: the token is refused before any tool runs\n")
	}
	for _, v := range r.Tools {
		fmt.Fprintf(&b, "  %-11s  %-7s  %s\n", v.Tool, v.Access, v.Detail)
	}

	b.WriteString("\nDecision: ")
	d := r.Decision
	switch {
	case d.Accepted:
		p := r.Principal
		fmt.Fprintf(&b, "accepted, subject %q", p.Subject)
		if p.ClientID != "" {
			fmt.Fprintf(&b, ", client %q", p.ClientID)
		}
		if !p.Expiry.IsZero() {
			fmt.Fprintf(&b, ", until %s", p.Expiry.UTC().Format(time.RFC3339))
		}
		b.WriteString("\n")
		// What the checks that passed could not rule out, such as an ID
		// token of a provider whose ID and access tokens look alike.
		for _, s := range r.Steps {
			if s.Warning != "" {
				fmt.Fprintf(&b, "  warning (%s): %s\n", s.Name, s.Warning)
			}
		}
	default:
		fmt.Fprintf(&b, "rejected: %s\n", d.Reason)
		fmt.Fprintf(&b, "  the gateway answers %d %s", d.Status, d.Error)
		switch {
		case d.Status == http.StatusUnauthorized:
			b.WriteString(" with WWW-Authenticate: the client needs another token\n")
		case d.Status == http.StatusServiceUnavailable && d.Reason == mcp.MisconfiguredReason:
			b.WriteString(" with Retry-After: the token was not judged; the tenant's configuration or its authorization server needs an operator (the failed step above says what)\n")
		case d.Status == http.StatusServiceUnavailable:
			b.WriteString(" with Retry-After: the token was not judged; the client should retry\n")
		default:
			b.WriteString(": the gateway's configuration or the authorization server needs an operator\n")
		}
	}
	_, _ = w.Write(b.Bytes())
}
