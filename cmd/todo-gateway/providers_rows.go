package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// What each row of the side-by-side comparison says, shared by the table
// and the markdown layouts.

// provVerdictLabel labels the row of the verdicts, which the HTML report
// shows apart.
const provVerdictLabel = "verdict"

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
			var cell []string
			switch m := res.settings.Config.Metadata; {
			case m != nil && m.IntrospectionEndpoint != "":
				cell = []string{provEndpoint(r.Endpoints.Introspection, r.Issuer) + " (configured)"}
			case r.MetadataURL == "":
				return []string{"-"}
			default:
				cell = []string{provEndpoint(r.Endpoints.Introspection, r.Issuer)}
			}
			switch pr := r.Introspection; {
			case pr == nil:
			case pr.NotProbed != "":
				cell = append(cell, "not probed")
			case pr.Inactive:
				cell = append(cell, `a random token: 200 "active": false`)
			default:
				cell = append(cell, "a random token: "+pr.Error)
			}
			return cell
		})},
		{"revocation", needMetadata(func(_ provResult, r *providers.ProbeReport) []string {
			return []string{provEndpoint(r.Endpoints.Revocation, r.Issuer)}
		})},
		{"grant types", needMetadata(func(_ provResult, r *providers.ProbeReport) []string {
			return []string{provJoinOr(r.GrantTypes, "not published")}
		})},
		{"todo scopes", needMetadata(provScopesCell)},
		{provVerdictLabel, func(res provResult, _ *providers.ProbeReport) []string { return provVerdictCell(res.verdicts) }},
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
