package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/todo-gateway/todo-gateway/providers"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// ruleVerifierSetup is the one verdict the command adds to providers.Verdicts:
// whether serve could build the tenant's verifier at all (typically the
// introspection secret's variable is unset). It needs the environment, which
// the pure rules do not see.
const ruleVerifierSetup = "verifier-setup"

// ruleRealToken is the verdict on the token of --token-file, verified as
// serve verifies it (the token command's explain).
const ruleRealToken = "real-token"

type providersOptions struct {
	config, tenant, format string
	tokenFile              string
	timeout                time.Duration
	parallel, width        int
}

func providersFlags() (*flag.FlagSet, *providersOptions) {
	o := &providersOptions{}
	fs := flag.NewFlagSet("providers", flag.ContinueOnError)
	fs.StringVar(&o.config, "config", "", "the configuration `file` (JSON) whose tenants to probe")
	fs.StringVar(&o.tenant, "tenant", "", "probe only the tenant with this `id`")
	fs.StringVar(&o.tokenFile, "token-file", "", "also verify the access token in this `file` for the --tenant, exactly as serve would, and put the outcome in the verdict")
	fs.StringVar(&o.format, "format", "table", "output `format`: table, markdown, json, or html (one self-contained file to share)")
	fs.DurationVar(&o.timeout, "timeout", providers.ProbeTimeout, "time allowed for each tenant's probe (at most 15s)")
	fs.IntVar(&o.parallel, "parallel", 8, "how many issuers are probed at once (1-64)")
	fs.IntVar(&o.width, "width", 40, "widest a tenant column of the table may be, in characters; longer values wrap (20-200)")
	return fs, o
}

func providersUsage(w io.Writer) {
	fs, _ := providersFlags()
	fs.SetOutput(w)
	fmt.Fprint(w, `Usage: todo-gateway providers --config FILE [--tenant ID [--token-file FILE]] [--format table|markdown|json|html]
                              [--timeout DURATION] [--parallel N] [--width N]

Providers probes every tenant's authorization server (discovery documents,
JWKS, endpoints, PKCE, client registration, scopes) and prints the tenants
side by side, one column each, with the gateway's verdict on each tenant's
configuration against what its provider publishes. Each verdict is an error
(the tenant cannot work), a warning (likely trouble) or info. A probe with
made-up tokens cannot see everything (whether a real token of a client is
accepted, what a real introspection answer lacks): --token-file adds the
verdict on one real token of the tenant's, verified as serve verifies it.

Exits 0 when every tenant can work, 1 when at least one has an error
verdict (or the file is invalid), and 2 on a usage error.

Flags:
`)
	printFlags(w, fs)
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
	case o.format != "table" && o.format != "markdown" && o.format != "json" && o.format != "html":
		return providersUsageError(stderr, fmt.Sprintf("--format %q is not table, markdown, json or html", o.format))
	case o.timeout <= 0 || o.timeout > providers.ProbeTimeout:
		return providersUsageError(stderr, fmt.Sprintf("--timeout %v is not between 0 and %v", o.timeout, providers.ProbeTimeout))
	case o.parallel < 1 || o.parallel > 64:
		return providersUsageError(stderr, fmt.Sprintf("--parallel %d is not between 1 and 64", o.parallel))
	case o.width < 20 || o.width > 200:
		return providersUsageError(stderr, fmt.Sprintf("--width %d is not between 20 and 200", o.width))
	case o.tokenFile != "" && o.tenant == "":
		return providersUsageError(stderr, "--token-file needs --tenant: a token is meant for one tenant")
	}
	var token string
	if o.tokenFile != "" {
		f, err := os.Open(o.tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "todo-gateway providers: --token-file: %v\n", err)
			return exitFail
		}
		token, err = readToken(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "todo-gateway providers: --token-file %s: %v\n", o.tokenFile, err)
			return exitFail
		}
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
	if token != "" {
		results[0].verdicts = append(results[0].verdicts, realTokenVerdicts(selected[0], results[0].report, token, o.timeout)...)
	}
	var err error
	switch o.format {
	case "json":
		err = writeProvidersJSON(stdout, results)
	case "html":
		err = writeProvidersHTML(stdout, results, time.Now(), readBuild())
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

// realTokenVerdicts verifies token for t as serve would (explain, the
// token command's) and says how it went: an error with the refusal and
// the step that made it, in the authorization server's own terms where
// the step quotes it; or info, with a warning for what a passing check
// could not rule out.
func realTokenVerdicts(t *tenants.Tenant, report *providers.ProbeReport, token string, timeout time.Duration) []providers.Verdict {
	rep := explain(t, token, timeout)
	if !rep.Decision.Accepted {
		msg := fmt.Sprintf("a real token was refused as serve would refuse it (%d %s): %s", rep.Decision.Status, rep.Decision.Error, rep.Decision.Reason)
		for _, s := range rep.Steps {
			if !s.OK {
				msg += fmt.Sprintf("; at the %s step: %s", s.Name, s.Detail)
				break
			}
		}
		return []providers.Verdict{{Rule: ruleRealToken, Severity: providers.SeverityError, Message: msg}}
	}
	p := rep.Principal
	out := []providers.Verdict{{Rule: ruleRealToken, Severity: providers.SeverityInfo,
		Message: fmt.Sprintf("a real token was accepted as serve would accept it: subject %q, client %q, permissions %v", p.Subject, p.ClientID, p.Permissions)}}
	for _, s := range rep.Steps {
		if s.Warning != "" {
			out = append(out, providers.Verdict{Rule: ruleRealToken, Severity: providers.SeverityWarning, Message: "the real token's " + s.Name + " check: " + s.Warning})
		}
	}
	// A token with none of the tenant's permissions, from a server that
	// does not publish its scopes either (the zitadel example OP strips
	// them from every request): asking again will not help.
	if len(p.Permissions) == 0 && report != nil && len(report.TenantScopes) > 0 &&
		!slices.ContainsFunc(report.TenantScopes, func(sc string) bool { return !slices.Contains(report.MissingScopes, sc) }) {
		out = append(out, providers.Verdict{Rule: ruleRealToken, Severity: providers.SeverityWarning,
			Message: fmt.Sprintf("the real token grants none of the tenant's permissions, and scopes_supported lists none of its scopes (%s): this provider may not issue them at all, and then a 403 step-up asking for them cannot succeed; grant the permissions from a role or group claim (claims.roles), or define the scopes at the provider",
				strings.Join(report.TenantScopes, " "))})
	}
	return out
}
