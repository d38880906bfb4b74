package tenants

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// resource is a parsed, canonical resource URL and its registry key.
type resource struct {
	url  *url.URL
	host string // lower case, port unless default: "localhost:3001"
	path string // "" or "/acme"
}

// parseResource checks that raw can serve as a resource identifier and is
// written canonically. It returns every reason it cannot; when there are
// none, r is complete.
//
// Canonical means: lower-case scheme and host, no port when it is the
// scheme's default, no leading zeros in the port, no trailing slash, and an
// empty path for a resource at the root of a host. Clients compare the
// resource byte for byte (RFC 9728 §3.3), so we refuse to guess: a
// non-canonical URL is an error that shows the canonical spelling.
func parseResource(raw string) (r resource, problems []string) {
	if raw == "" {
		return r, []string{"required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return r, []string{"not a valid URL: " + err.Error()}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return r, []string{"must be an absolute http or https URL"}
	}
	if u.User != nil {
		problems = append(problems, "must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery {
		problems = append(problems, "must not have a query")
	}
	if strings.Contains(raw, "#") {
		problems = append(problems, "must not have a fragment")
	}
	host := strings.ToLower(u.Hostname())
	if !isASCII(host) {
		problems = append(problems, "host must be ASCII (write an internationalised name in punycode)")
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		switch {
		case err != nil || n < 1 || n > 65535:
			problems = append(problems, "port must be a number from 1 to 65535")
		case n == 80 && u.Scheme == "https", n == 443 && u.Scheme == "http":
			// Lookup strips both :80 and :443 from Host headers because behind
			// a TLS-terminating proxy the gateway cannot know the scheme;
			// this resource would then be unreachable.
			problems = append(problems, "port "+port+" with "+u.Scheme+" is not supported: the gateway treats :80 and :443 as default ports; use another port")
		case n == 80 && u.Scheme == "http", n == 443 && u.Scheme == "https":
			port = ""
		default:
			port = strconv.Itoa(n)
		}
	}
	// Only unreserved characters: then the path the HTTP layer sees (decoded)
	// is byte-identical to the path in the resource, and no percent-encoding
	// variants can name the same tenant.
	if u.RawPath != "" || strings.ContainsFunc(u.Path, func(c rune) bool { return !isPathChar(c) }) {
		problems = append(problems, `path may only contain letters, digits, "-", ".", "_", "~" and "/"`)
	}
	path := strings.TrimRight(u.Path, "/")
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		switch seg {
		case "":
			if path != "" {
				problems = append(problems, `path must not contain empty segments ("//")`)
			}
		case ".", "..":
			problems = append(problems, `path must not contain "." or ".." segments`)
		}
	}
	if path == "/.well-known" || strings.HasPrefix(path, "/.well-known/") {
		problems = append(problems, "path must not be under /.well-known, where the gateway serves metadata")
	}
	if len(problems) > 0 {
		return r, problems
	}

	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	canonical := u.Scheme + "://" + hostport + path
	if canonical != raw {
		return r, []string{"not canonical: write " + strconv.Quote(canonical)}
	}
	return resource{
		url:  &url.URL{Scheme: u.Scheme, Host: hostport, Path: path},
		host: hostport,
		path: path,
	}, nil
}

func isPathChar(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// normalizeHost turns a Host header into the form of Tenant.Host. Both :80
// and :443 are dropped whatever the scheme: behind a TLS-terminating proxy
// the gateway sees http while the client used https, and validation forbids
// the resources (http on 443, https on 80) this would make ambiguous.
func normalizeHost(h string) string {
	h = strings.ToLower(h) // no allocation when already lower case
	if s, ok := strings.CutSuffix(h, ":443"); ok {
		return s
	}
	if s, ok := strings.CutSuffix(h, ":80"); ok {
		return s
	}
	return h
}
