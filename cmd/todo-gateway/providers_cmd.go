package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// ruleVerifierSetup is the one verdict the command adds to providers.Verdicts:
// whether serve could build the tenant's verifier at all (typically the
// introspection secret's variable is unset). It needs the environment, which
// the pure rules do not see.
const ruleVerifierSetup = "verifier-setup"

type providersOptions struct {
	config, tenant, format string
	timeout                time.Duration
	parallel, width        int
}

func providersFlags() (*flag.FlagSet, *providersOptions) {
	o := &providersOptions{}
	fs := flag.NewFlagSet("providers", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "the configuration `file` (JSON) whose tenants to probe")
	fs.StringVar(&o.tenant, "tenant", "", "probe only the tenant with this `id`")
	fs.StringVar(&o.format, "format", "table", "output `format`: table, markdown or json")
	fs.DurationVar(&o.timeout, "timeout", providers.ProbeTimeout, "time allowed for each tenant's probe (at most 15s)")
	fs.IntVar(&o.parallel, "parallel", 8, "how many issuers are probed at once (1-64)")
	fs.IntVar(&o.width, "width", 40, "widest a tenant column of the table may be, in characters; longer values wrap (20-200)")
	return fs, o
}

func providersUsage(w io.Writer) {
	fs, _ := providersFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway providers --config FILE [--tenant ID] [--format table|markdown|json]

Providers probes every tenant's authorization server (discovery documents,
JWKS, endpoints, PKCE, client registration, scopes) and prints the tenants
side by side, one column each, with the gateway's verdict on each tenant's
configuration against what its provider publishes. Each verdict is an error
(the tenant cannot work), a warning (likely trouble) or info.

Exits 0 when every tenant can work, 1 when at least one has an error
verdict (or the file is invalid), and 2 on a usage error.

Flags:
`)
	fs.PrintDefaults()
}

func runProviders(args []string, stdout, stderr io.Writer) int {
	fs, o := providersFlags()
	if code, done := parseFlags(fs, args, providersUsage, stdout, stderr); done {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return providersUsageError(stderr, fmt.Sprintf("unexpected argument %q (the file is given with --config FILE)", fs.Arg(0)))
	case o.config == "":
		return providersUsageError(stderr, "--config FILE is required")
	case o.format != "table" && o.format != "markdown" && o.format != "json":
		return providersUsageError(stderr, fmt.Sprintf("--format %q is not table, markdown or json", o.format))
	case o.timeout <= 0 || o.timeout > providers.ProbeTimeout:
		return providersUsageError(stderr, fmt.Sprintf("--timeout %v is not between 0 and %v", o.timeout, providers.ProbeTimeout))
	case o.parallel < 1 || o.parallel > 64:
		return providersUsageError(stderr, fmt.Sprintf("--parallel %d is not between 1 and 64", o.parallel))
	case o.width < 20 || o.width > 200:
		return providersUsageError(stderr, fmt.Sprintf("--width %d is not between 20 and 200", o.width))
	}

	cfg := loadFile(o.config, stderr)
	if cfg == nil {
		return exitFail
	}
	var selected []*tenants.Tenant
	for i := range cfg.Tenants {
		if t := &cfg.Tenants[i]; o.tenant == "" || t.ID == o.tenant {
			selected = append(selected, t)
		}
	}
	if len(selected) == 0 {
		return providersUsageError(stderr, fmt.Sprintf("no tenant %q in %s (tenants: %s)", o.tenant, o.config, tenantIDList(cfg)))
	}

	results := probeProviders(context.Background(), selected, o.timeout, o.parallel)
	var err error
	switch o.format {
	case "json":
		err = writeProvidersJSON(stdout, results)
	case "markdown":
		err = writeProvidersMarkdown(stdout, provRows(results))
	default:
		err = writeProvidersTable(stdout, provRows(results), o.width)
		if err == nil {
			err = writeProvidersSummary(stdout, results)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "todo-gateway providers: %v\n", err)
		return exitFail
	}
	for _, r := range results {
		if !providers.CanWork(r.verdicts) {
			return exitFail
		}
	}
	return exitOK
}

func providersUsageError(stderr io.Writer, msg string) int {
	return usageError(stderr, "providers", providersUsage, msg)
}

// provResult is one column: a tenant, what its server answered, and the
// verdicts.
type provResult struct {
	settings providers.Settings // with defaults, as serve uses them
	report   *providers.ProbeReport
	verdicts []providers.Verdict
}

// probeProviders probes at most parallel issuers at once, each within
// timeout, and returns the results in the order of ts.
func probeProviders(ctx context.Context, ts []*tenants.Tenant, timeout time.Duration, parallel int) []provResult {
	out := make([]provResult, len(ts))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			// The clock starts when the probe does, not while it queues.
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out[i] = probeProvider(pctx, t)
		})
	}
	wg.Wait()
	return out
}

// provQuiet keeps provider logs out of the report: every finding is in the
// output already.
var provQuiet = slog.New(slog.DiscardHandler)

func probeProvider(ctx context.Context, t *tenants.Tenant) provResult {
	// Loading applied the defaults: these are the settings serve verifies with.
	s := t.ProviderSettings()
	res := provResult{settings: s}
	// New is exactly what serve calls, so its refusal is the refusal serve
	// would log; it makes no network call.
	if p, err := providers.New(s, providers.WithLogger(provQuiet)); err != nil {
		res.verdicts = append(res.verdicts, providers.Verdict{Rule: ruleVerifierSetup, Severity: providers.SeverityError,
			Message: fmt.Sprintf("serve cannot build this tenant's verifier (%v), so it would answer 503 to every token", err)})
	} else {
		p.Close()
	}
	// The probe needs no verifier and no secret, so it describes the server
	// even when the verifier cannot be built.
	report, err := providers.Probe(ctx, s)
	if err != nil {
		return res // New has refused these settings too, and said so above
	}
	res.report = report
	res.verdicts = append(res.verdicts, providers.Verdicts(s, report)...)
	return res
}

// provStatus is the one-word summary of a tenant's verdicts; info counts as ok.
func provStatus(vs []providers.Verdict) string {
	switch providers.Worst(vs) {
	case providers.SeverityError:
		return "error"
	case providers.SeverityWarning:
		return "warning"
	}
	return "ok"
}

// --- JSON ---

// The JSON output has its own types so that its field names stay stable
// whatever the Go fields of ProbeReport become.
type provDocJSON struct {
	OK      bool             `json:"ok"` // every tenant can work
	Tenants []provTenantJSON `json:"tenants"`
}

type provTenantJSON struct {
	Tenant    string              `json:"tenant"`
	Type      string              `json:"type"`
	Issuer    string              `json:"issuer"`
	TokenMode string              `json:"token_mode"`
	Audience  providers.Audience  `json:"audience"`
	Status    string              `json:"status"` // ok, warning or error
	Verdicts  []providers.Verdict `json:"verdicts"`
	Probe     *provProbeJSON      `json:"probe"` // null when the probe could not run
}

type provProbeJSON struct {
	DurationMS               int64               `json:"duration_ms"`
	Discovery                []provDiscoveryJSON `json:"discovery"`
	MetadataURL              string              `json:"metadata_url"`
	IssuerMatch              bool                `json:"issuer_match"`
	Endpoints                provEndpointsJSON   `json:"endpoints"`
	PKCES256                 bool                `json:"pkce_s256"`
	CodeChallengeMethods     []string            `json:"code_challenge_methods"`
	GrantTypes               []string            `json:"grant_types"`
	ResponseTypes            []string            `json:"response_types"`
	SigningAlgs              []string            `json:"signing_algs"`
	AllowedAlgs              []string            `json:"allowed_algs"`
	TokenEndpointAuthMethods []string            `json:"token_endpoint_auth_methods"`
	IntrospectionAuthMethods []string            `json:"introspection_auth_methods"`
	DynamicRegistration      bool                `json:"dynamic_registration"`
	ClientIDMetadataDocument bool                `json:"client_id_metadata_document"`
	JWKS                     provJWKSJSON        `json:"jwks"`
	ScopesSupported          []string            `json:"scopes_supported"`
	TenantScopes             []string            `json:"tenant_scopes"`
	MissingScopes            []string            `json:"missing_scopes"`
}

type provDiscoveryJSON struct {
	URL      string `json:"url"`
	Document string `json:"document"` // rfc8414 or openid
	Status   int    `json:"status"`   // 0 when there was no HTTP answer
	Issuer   string `json:"issuer,omitempty"`
	Error    string `json:"error,omitempty"`
	Used     bool   `json:"used"`
}

type provEndpointsJSON struct {
	Authorization string `json:"authorization"`
	Token         string `json:"token"`
	JWKS          string `json:"jwks"`
	Introspection string `json:"introspection"`
	Revocation    string `json:"revocation"`
	Registration  string `json:"registration"`
	Userinfo      string `json:"userinfo"`
}

type provJWKSJSON struct {
	URL   string        `json:"url"`
	Error string        `json:"error,omitempty"`
	Keys  []provKeyJSON `json:"keys"`
}

type provKeyJSON struct {
	KID    string `json:"kid"`
	Alg    string `json:"alg"`
	Use    string `json:"use"`
	Kty    string `json:"kty"`
	Crv    string `json:"crv,omitempty"`
	Bits   int    `json:"bits,omitempty"`
	Usable bool   `json:"usable"`
}

// provList makes absent lists [] rather than null, so consumers need no null
// checks.
func provList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeProvidersJSON(w io.Writer, results []provResult) error {
	doc := provDocJSON{OK: true, Tenants: make([]provTenantJSON, len(results))}
	for i, res := range results {
		s := res.settings
		tj := provTenantJSON{
			Tenant: s.Tenant, Type: string(s.Config.Type), Issuer: s.Config.Issuer, TokenMode: string(s.Config.Token),
			Audience: s.Audience, Status: provStatus(res.verdicts), Verdicts: res.verdicts,
		}
		if tj.Verdicts == nil {
			tj.Verdicts = []providers.Verdict{}
		}
		if !providers.CanWork(res.verdicts) {
			doc.OK = false
		}
		if r := res.report; r != nil {
			pj := &provProbeJSON{
				DurationMS: r.Duration.Milliseconds(), MetadataURL: r.MetadataURL, IssuerMatch: r.IssuerMatch,
				Endpoints:                provEndpointsJSON(r.Endpoints),
				PKCES256:                 r.PKCES256,
				CodeChallengeMethods:     provList(r.CodeChallengeMethods),
				GrantTypes:               provList(r.GrantTypes),
				ResponseTypes:            provList(r.ResponseTypes),
				SigningAlgs:              provList(r.SigningAlgs),
				AllowedAlgs:              provList(r.AllowedAlgs),
				TokenEndpointAuthMethods: provList(r.TokenEndpointAuthMethods),
				IntrospectionAuthMethods: provList(r.IntrospectionAuthMethods),
				DynamicRegistration:      r.DynamicRegistration,
				ClientIDMetadataDocument: r.ClientIDMetadataDocument,
				JWKS:                     provJWKSJSON{URL: r.JWKSURL, Error: r.KeysError, Keys: []provKeyJSON{}},
				ScopesSupported:          provList(r.ScopesSupported),
				TenantScopes:             provList(r.TenantScopes),
				MissingScopes:            provList(r.MissingScopes),
				Discovery:                []provDiscoveryJSON{},
			}
			for _, a := range r.Discovery {
				pj.Discovery = append(pj.Discovery, provDiscoveryJSON{URL: a.URL, Document: provDocumentKind(a.URL),
					Status: a.Status, Issuer: a.Issuer, Error: a.Error, Used: a.URL == r.MetadataURL})
			}
			for _, k := range r.Keys {
				pj.JWKS.Keys = append(pj.JWKS.Keys, provKeyJSON{KID: k.KID, Alg: k.Alg, Use: k.Use, Kty: k.Type, Crv: k.Curve, Bits: k.Bits, Usable: k.Usable})
			}
			tj.Probe = pj
		}
		doc.Tenants[i] = tj
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// provDocumentKind names a discovery URL's standard.
func provDocumentKind(u string) string {
	if strings.Contains(u, "/.well-known/oauth-authorization-server") {
		return "rfc8414"
	}
	return "openid"
}

// --- rows shared by table and markdown ---

// provRow is one line of the comparison: a label and, per tenant, the
// lines of its cell.
type provRow struct {
	label string
	cells [][]string
}

// provRows lays the results out for a side-by-side view. The first row
// is the header (tenant ids).
func provRows(results []provResult) []provRow {
	type rowFunc func(res provResult, r *providers.ProbeReport) []string
	// Rows that need a report show "-" when the probe could not run.
	needReport := func(f rowFunc) rowFunc {
		return func(res provResult, r *providers.ProbeReport) []string {
			if r == nil {
				return []string{"-"}
			}
			return f(res, r)
		}
	}
	// Rows read from the metadata document also show "-" when none was
	// usable: "no" would claim the server lacks what nobody could see.
	needMetadata := func(f rowFunc) rowFunc {
		return needReport(func(res provResult, r *providers.ProbeReport) []string {
			if r.MetadataURL == "" {
				return []string{"-"}
			}
			return f(res, r)
		})
	}
	yesNo := func(get func(r *providers.ProbeReport) bool) rowFunc {
		return needMetadata(func(_ provResult, r *providers.ProbeReport) []string { return []string{provYesNo(get(r))} })
	}
	defs := []struct {
		label string
		f     rowFunc
	}{
		{"tenant", func(res provResult, _ *providers.ProbeReport) []string { return []string{res.settings.Tenant} }},
		{"type", func(res provResult, _ *providers.ProbeReport) []string {
			return []string{string(res.settings.Config.Type)}
		}},
		{"issuer", func(res provResult, _ *providers.ProbeReport) []string { return []string{res.settings.Config.Issuer} }},
		{"token, audience", func(res provResult, _ *providers.ProbeReport) []string {
			return []string{provTokenAudience(res.settings)}
		}},
		{"discovery", needReport(provDiscoveryCell)},
		{"issuer match", needReport(provIssuerMatchCell)},
		{"JWKS", needReport(provJWKSCell)},
		{"allowed algs", needReport(provAllowedAlgsCell)},
		{"PKCE S256", yesNo(func(r *providers.ProbeReport) bool { return r.PKCES256 })},
		{"dynamic registration", yesNo(func(r *providers.ProbeReport) bool { return r.DynamicRegistration })},
		{"client ID metadata", yesNo(func(r *providers.ProbeReport) bool { return r.ClientIDMetadataDocument })},
		{"introspection", needReport(func(res provResult, r *providers.ProbeReport) []string {
			if m := res.settings.Config.Metadata; m != nil && m.IntrospectionEndpoint != "" {
				return []string{provEndpoint(r.Endpoints.Introspection, r.Issuer) + " (configured)"}
			}
			if r.MetadataURL == "" {
				return []string{"-"}
			}
			return []string{provEndpoint(r.Endpoints.Introspection, r.Issuer)}
		})},
		{"revocation", needMetadata(func(_ provResult, r *providers.ProbeReport) []string {
			return []string{provEndpoint(r.Endpoints.Revocation, r.Issuer)}
		})},
		{"grant types", needMetadata(func(_ provResult, r *providers.ProbeReport) []string {
			return []string{provJoinOr(r.GrantTypes, "not published")}
		})},
		{"todo scopes", needMetadata(provScopesCell)},
		{"verdict", func(res provResult, _ *providers.ProbeReport) []string { return provVerdictCell(res.verdicts) }},
	}
	rows := make([]provRow, len(defs))
	for i, d := range defs {
		rows[i].label = d.label
		for _, res := range results {
			rows[i].cells = append(rows[i].cells, d.f(res, res.report))
		}
	}
	return rows
}

func provTokenAudience(s providers.Settings) string {
	a := s.Audience
	v := string(s.Config.Token) + ", " + string(a.Strategy)
	switch a.Strategy {
	case providers.AudienceValues:
		v += " " + strings.Join(a.Values, " ")
	case providers.AudienceScope:
		v += " " + a.Prefix
	}
	return v
}

// provDiscoveryCell lists the documents that answered, by standard and path
// (the issuer row already shows the origin).
func provDiscoveryCell(_ provResult, r *providers.ProbeReport) []string {
	var lines []string
	var statuses []string
	for _, a := range r.Discovery {
		if a.Status != 200 {
			if a.Status != 0 {
				statuses = append(statuses, fmt.Sprint(a.Status))
			}
			continue
		}
		// The standard and the path on lines of their own: a well-known
		// path alone nearly fills a column.
		name := "OpenID:"
		if provDocumentKind(a.URL) == "rfc8414" {
			name = "RFC 8414:"
		}
		lines = append(lines, name, provEndpoint(a.URL, r.Issuer))
	}
	if len(lines) > 0 {
		return lines
	}
	if len(statuses) > 0 {
		return []string{"none (HTTP " + strings.Join(statuses, ", ") + ")"}
	}
	return []string{"none (no answer)"}
}

func provIssuerMatchCell(_ provResult, r *providers.ProbeReport) []string {
	if r.IssuerMatch {
		return []string{"yes"}
	}
	for _, a := range r.Discovery {
		if a.Status == 200 && a.Issuer != r.Issuer {
			if a.Issuer == "" {
				return []string{"no (the document names no issuer)"}
			}
			return []string{"no: " + a.Issuer}
		}
	}
	return []string{"-"}
}

func provJWKSCell(res provResult, r *providers.ProbeReport) []string {
	switch {
	case r.JWKSURL == "" && res.settings.Config.Token == providers.TokenIntrospection:
		return []string{"not used (introspection)"}
	case r.JWKSURL == "" && r.MetadataURL == "":
		return []string{"-"}
	case r.JWKSURL == "":
		return []string{"none"}
	case r.KeysError != "":
		return []string{"unreachable: " + r.KeysError}
	}
	var algs []string
	unusable := 0
	for _, k := range r.Keys {
		if !k.Usable {
			unusable++
			continue
		}
		a := k.Alg
		if a == "" {
			a = strings.Join(providers.KeyAlgorithms(k), "/")
		}
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	n := fmt.Sprintf("%d keys", len(r.Keys))
	if len(r.Keys) == 1 {
		n = "1 key"
	}
	if unusable > 0 {
		n += fmt.Sprintf(" (%d unusable)", unusable)
	}
	if len(algs) == 0 {
		return []string{n}
	}
	return []string{n + ": " + strings.Join(algs, ", ")}
}

// provAllowedAlgsCell is the allow-list the verifier would use. The
// fallback when nothing is advertised (every asymmetric algorithm) is
// named rather than listed.
func provAllowedAlgsCell(res provResult, r *providers.ProbeReport) []string {
	switch {
	case len(res.settings.Config.Algorithms) > 0:
		return []string{strings.Join(r.AllowedAlgs, ", ") + " (configured)"}
	case r.MetadataURL == "" && r.JWKSURL == "":
		return []string{"-"}
	case len(r.SigningAlgs) == 0:
		return []string{"any RS, PS, ES, EdDSA (none advertised)"}
	}
	return []string{provJoinOr(r.AllowedAlgs, "-")}
}

func provScopesCell(_ provResult, r *providers.ProbeReport) []string {
	switch {
	case len(r.ScopesSupported) == 0:
		return []string{"not checked (no scopes_supported)"}
	case len(r.MissingScopes) == 0:
		return []string{"all listed: " + strings.Join(r.TenantScopes, " ")}
	case len(r.MissingScopes) == len(r.TenantScopes):
		return []string{"none listed: " + strings.Join(r.MissingScopes, " ")}
	}
	return []string{"not listed: " + strings.Join(r.MissingScopes, " ")}
}

// provVerdictCell heads the verdicts with a summary; info findings are
// listed but not counted, they need no action.
func provVerdictCell(vs []providers.Verdict) []string {
	var errs, warns int
	for _, v := range vs {
		switch v.Severity {
		case providers.SeverityError:
			errs++
		case providers.SeverityWarning:
			warns++
		}
	}
	head := "ok"
	switch {
	case errs > 0:
		head = "CANNOT WORK: " + provPlural(errs, "error")
		if warns > 0 {
			head += ", " + provPlural(warns, "warning")
		}
	case warns > 0:
		head = "ok, " + provPlural(warns, "warning")
	}
	lines := []string{head}
	for _, v := range vs {
		lines = append(lines, string(v.Severity)+": "+v.Message)
	}
	return lines
}

func provPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func provYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func provJoinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	return strings.Join(s, ", ")
}

// provEndpoint shows an endpoint as a path when it shares the issuer's
// origin, in full otherwise, and "no" when absent.
func provEndpoint(endpoint, issuer string) string {
	if endpoint == "" {
		return "no"
	}
	e, err1 := url.Parse(endpoint)
	i, err2 := url.Parse(issuer)
	if err1 != nil || err2 != nil || e.Scheme != i.Scheme || e.Host != i.Host {
		return endpoint
	}
	return e.RequestURI()
}

// --- plain-text table ---

// writeProvidersTable aligns the rows in columns for a terminal: a label column,
// then one column per tenant, each at most width characters wide; longer
// values wrap at spaces (words longer than the column are cut), and the
// continuation of a wrapped line is indented.
func writeProvidersTable(w io.Writer, rows []provRow, width int) error {
	if len(rows) == 0 {
		return nil
	}
	labelW := 0
	for _, r := range rows {
		labelW = max(labelW, utf8.RuneCountInString(r.label))
	}
	ncol := len(rows[0].cells)
	colW := make([]int, ncol)
	for _, r := range rows {
		for c, lines := range r.cells {
			for _, l := range lines {
				colW[c] = max(colW[c], min(width, utf8.RuneCountInString(l)))
			}
		}
	}
	var b strings.Builder
	emit := func(label string, cells []string) {
		line := provPad(label, labelW)
		for c, s := range cells {
			line += "  " + provPad(s, colW[c])
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	for i, r := range rows {
		wrapped := make([][]string, ncol)
		height := 0
		for c, lines := range r.cells {
			for _, l := range lines {
				wrapped[c] = append(wrapped[c], provWrap(l, colW[c])...)
			}
			height = max(height, len(wrapped[c]))
		}
		for h := range height {
			label := ""
			if h == 0 {
				label = r.label
			}
			cells := make([]string, ncol)
			for c := range ncol {
				if h < len(wrapped[c]) {
					cells[c] = wrapped[c][h]
				}
			}
			emit(label, cells)
		}
		if i == 0 { // under the header
			rules := make([]string, ncol)
			for c := range ncol {
				rules[c] = strings.Repeat("-", colW[c])
			}
			emit(strings.Repeat("-", labelW), rules)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func provPad(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// provWrap breaks s into lines of at most width runes, at spaces where it can;
// continuation lines are indented by two spaces so that wrapped items
// (verdicts, documents) stay distinguishable.
func provWrap(s string, width int) []string {
	const indent = "  "
	var lines []string
	cur, limit := "", width
	flush := func() {
		lines = append(lines, cur)
		cur, limit = indent, width
	}
	for _, word := range strings.Fields(s) {
		for {
			curN, wordN := utf8.RuneCountInString(cur), utf8.RuneCountInString(word)
			sep := 0
			if strings.TrimSpace(cur) != "" {
				sep = 1
			}
			if curN+sep+wordN <= limit {
				if sep == 1 {
					cur += " "
				}
				cur += word
				break
			}
			if strings.TrimSpace(cur) != "" {
				flush()
				continue
			}
			// A word longer than a whole line (a URL): cut it, after a
			// '/' when one falls in the second half of the line, so paths
			// break where a reader expects.
			room := limit - curN
			r := []rune(word)
			cut := room
			for i := room - 1; i >= room/2; i-- {
				if r[i] == '/' {
					cut = i + 1
					break
				}
			}
			cur += string(r[:cut])
			word = string(r[cut:])
			flush()
		}
	}
	if strings.TrimSpace(cur) != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

func writeProvidersSummary(w io.Writer, results []provResult) error {
	var broken []string
	for _, r := range results {
		if !providers.CanWork(r.verdicts) {
			broken = append(broken, r.settings.Tenant)
		}
	}
	var err error
	switch {
	case len(broken) == 0 && len(results) == 1:
		_, err = fmt.Fprintln(w, "\nthe tenant can work")
	case len(broken) == 0:
		_, err = fmt.Fprintf(w, "\nall %d tenants can work\n", len(results))
	default:
		_, err = fmt.Fprintf(w, "\n%d of %d tenants cannot work: %s\n", len(broken), len(results), strings.Join(broken, ", "))
	}
	return err
}

// --- markdown ---

// writeProvidersMarkdown writes a GitHub table: lines within a cell become
// <br>, and characters that would end a cell or start HTML are escaped.
func writeProvidersMarkdown(w io.Writer, rows []provRow) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	cell := func(lines []string) string {
		esc := make([]string, len(lines))
		for i, l := range lines {
			l = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(l)
			esc[i] = l
		}
		return strings.Join(esc, "<br>")
	}
	head := rows[0]
	b.WriteString("| |")
	for _, c := range head.cells {
		b.WriteString(" **" + cell(c) + "** |")
	}
	b.WriteString("\n|---|")
	for range head.cells {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows[1:] {
		b.WriteString("| " + r.label + " |")
		for _, c := range r.cells {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
