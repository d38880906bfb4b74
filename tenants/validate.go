package tenants

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the JSON path of the offending value ("tenants[2].resource"),
	// or "" for the document as a whole.
	Path string
	// Tenant is the id of the tenant the problem lies in, as written, when
	// there is one; it saves a reader from counting array entries.
	Tenant string
	// Message says what is wrong and, where it can, how to fix it.
	Message string
}

func (p Problem) String() string {
	loc := p.Path
	if n, rest, ok := splitTenantPath(p.Path); ok && p.Tenant != "" {
		loc = fmt.Sprintf("tenants[%d] (id %q)%s", n, p.Tenant, rest)
	}
	if loc == "" {
		loc = "top level"
	}
	return loc + ": " + p.Message
}

// ValidationError is every problem found in a configuration, in document
// order, so that one run of "check" shows everything to fix.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

type validator struct {
	problems []Problem
	tenant   string // id of the tenant being checked, for Problem.Tenant
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Tenant: v.tenant, Message: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() []Problem {
	v := &validator{}
	v.listen("listen", c.Listen)
	v.listen("admin.listen", c.Admin.Listen)
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
		v.add("admin.listen", "must differ from listen: the admin endpoints never share the public listener")
	}
	v.store("store", c.Store)
	for i, f := range c.Assertion.KeyFiles {
		if f == "" {
			v.add(fmt.Sprintf("assertion.key_files[%d]", i), "must name a PEM private key file")
		}
	}
	v.http("http", c.HTTP)
	v.between("shutdown.drain", c.Shutdown.Drain, 0, maxShutdownWait)
	v.between("shutdown.grace", c.Shutdown.Grace, time.Second, maxShutdownWait)
	switch c.TenantsFrom {
	case "":
		if len(c.Tenants) == 0 {
			v.add("tenants", "at least one tenant is required")
		}
	case TenantsFromEtcd:
		if c.Store.Driver != DriverEtcd {
			v.add("tenants_from", `"etcd" reads the tenants from the store's etcd cluster: it needs store.driver "etcd"`)
		}
		if len(c.Tenants) > 0 {
			v.add("tenants", `with tenants_from "etcd" the tenants come from etcd: list them in the file you push with "todo-gateway tenants push", not here`)
		}
	default:
		v.add("tenants_from", `unknown source %q: leave it out for the tenants listed here, or "etcd"`, c.TenantsFrom)
	}
	firstID := make(map[string]int)
	firstLoc := make(map[string]int)
	for i := range c.Tenants {
		t := &c.Tenants[i]
		p := fmt.Sprintf("tenants[%d]", i)
		v.tenant = t.ID
		loc := v.tenantFields(p, t)
		if t.ID != "" {
			if j, dup := firstID[t.ID]; dup {
				v.add(p+".id", "duplicate id %q: tenants[%d] already uses it", t.ID, j)
			} else {
				firstID[t.ID] = i
			}
		}
		if loc.url != nil {
			// The scheme is not part of the key: routing is by host and path
			// because the gateway cannot trust that it sees the client's scheme.
			key := loc.host + loc.path
			if j, dup := firstLoc[key]; dup {
				v.add(p+".resource", "host and path already used by tenants[%d] (id %q)", j, c.Tenants[j].ID)
			} else {
				firstLoc[key] = i
			}
		}
	}
	return v.problems
}

func (v *validator) http(path string, h HTTPConfig) {
	for i, o := range h.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != strings.ToLower(o) {
			v.add(fmt.Sprintf("%s.allowed_origins[%d]", path, i),
				`must be "*" or an origin as a browser sends it: lower-case scheme://host[:port], no path (such as "https://app.example.com")`)
		}
	}
	if h.BodyLimit != 0 && (h.BodyLimit < minBodyLimit || h.BodyLimit > maxBodyLimit) {
		v.add(path+".body_limit", "must be from %d to %d bytes", minBodyLimit, maxBodyLimit)
	}
	if h.MaxConnections < 0 {
		v.add(path+".max_connections", "must be at least 1, or left out for a limit derived from the open-file limit")
	}
	if h.MaxConnectionsPerSource < 0 {
		v.add(path+".max_connections_per_source", "must be at least 1, or left out for no cap per address")
	}
	for i, p := range h.TrustedProxies {
		if _, ok := parseProxy(p); !ok {
			v.add(fmt.Sprintf("%s.trusted_proxies[%d]", path, i), `must be an IP address or a CIDR range (such as "10.0.0.0/8" or "127.0.0.1")`)
		}
	}
}

func (v *validator) rateLimit(path string, rl *RateLimit) {
	if rl == nil {
		return
	}
	// !(x > 0) also refuses NaN, which JSON cannot spell but a Config built in Go can hold.
	if !(rl.RequestsPerSecond >= minRequestsPerSecond) || rl.RequestsPerSecond > maxRequestsPerSecond {
		v.add(path+".requests_per_second", "must be from %g (one tool call every %g s) to %g (0.5 is one call every two seconds)",
			minRequestsPerSecond, 1/minRequestsPerSecond, float64(maxRequestsPerSecond))
	}
	if rl.Burst < 0 || rl.Burst > maxBurst {
		v.add(path+".burst", "must be from 1 to %d, or left out for requests_per_second rounded up", int(maxBurst))
	}
}

func (v *validator) listen(path, addr string) {
	if addr == "" {
		return // default
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, `must be host:port, such as "127.0.0.1:3001"`)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "port must be a number from 0 to 65535")
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil && !hostPattern.MatchString(host) {
		v.add(path, "invalid host %q", host)
	}
}

// tenantFields checks one tenant on its own and returns its parsed resource
// (url nil when invalid) for the cross-tenant checks.
func (v *validator) tenantFields(p string, t *Tenant) resource {
	switch {
	case t.ID == "":
		v.add(p+".id", "required")
	case !idPattern.MatchString(t.ID):
		v.add(p+".id", `must be 1 to 63 characters from a-z, 0-9 and "-", starting with a letter or digit (it names the tenant's storage)`)
	}
	loc, probs := parseResource(t.Resource)
	for _, msg := range probs {
		v.add(p+".resource", "%s", msg)
	}
	if t.ResourceDocumentation != "" {
		if u, err := url.Parse(t.ResourceDocumentation); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			v.add(p+".resource_documentation", "must be an absolute http or https URL")
		}
	}
	switch t.MissingPermission {
	case "", MissingPermissionChallenge, MissingPermissionToolError:
	default:
		v.add(p+".missing_permission", "unknown value %q (one of %s, %s)", t.MissingPermission, MissingPermissionChallenge, MissingPermissionToolError)
	}
	v.rateLimit(p+".rate_limit", t.RateLimit)
	for _, sp := range t.Server.Problems() {
		path := p + ".server"
		if sp.Path != "" {
			path += "." + sp.Path
		}
		v.add(path, "%s", sp.Message)
	}
	// The provider settings are package providers' to judge, exactly as
	// serve's providers.New will; only the path prefix is ours. A problem
	// already reported here (a missing resource is both ours and the
	// resource audience strategy's) is reported once.
	for _, pp := range t.ProviderSettings().Validate() {
		prob := Problem{Path: p + "." + pp.Path, Tenant: t.ID, Message: pp.Message}
		if !slices.Contains(v.problems, prob) {
			v.problems = append(v.problems, prob)
		}
	}
	return loc
}
