// Package providers turns a tenant's provider configuration into a token
// verifier: a raw bearer token in, a Principal or a typed *Error out.
//
// One Provider serves one tenant and trusts exactly one authorization
// server (Logto, any OpenID Connect provider, or a plain OAuth 2.0 server).
// New makes no network call; the first Verify discovers the server's
// metadata (DiscoveryURLs gives the order per provider type), caches it,
// and retries with backoff while the server is down. Until it answers,
// Verify fails with ClassUnavailable, never ClassInvalidToken. Metadata and
// keys are the issuer's, not the tenant's: Providers built with one
// Issuers registry share them with every tenant of the same issuer and
// fetch settings (issuers.go).
//
// JWT access tokens (RFC 9068) are parsed by go-jose and checked by
// go-oidc's verifier (algorithm allow-list, signature, exact issuer) over a
// key set of our own (jwks.go): go-oidc's RemoteKeySet refetches on every
// unknown kid without a rate limit or a timeout. typ, exp/nbf/iat with
// leeway, subject, audience strategy and scopes are checked in claims.go.
// Opaque tokens go to RFC 7662 introspection (introspect.go), whose
// answers pass the same claim checks.
//
// Files, one concern each: config.go (the configuration blocks), settings.go
// (Settings and their defaults), kinds.go (the one table of what differs
// between logto, oidc and oauth), validate.go (every rule on the settings,
// reported at once: "check" and "serve" run the same), provider.go (New,
// Close, what a Provider shares with its parts), issuers.go (the registry
// of what tenants of one issuer share), client.go (the outbound
// HTTP client), verify.go (Verify and the bearer token syntax),
// discovery.go, jwks.go, jwt.go, introspect.go, claims.go, cache.go,
// fetch.go (bounded HTTP, single flight, backoff), errors.go (the reasons),
// verifier.go (the Verifier interface, Principal and Error), status.go,
// metrics.go, probe.go (the capability report, which needs no verifier),
// verdict.go (the rules judging a probe), quirks.go (what hosted providers
// are known to put in their tokens), trace.go (the optional record of every
// check a Verify makes, behind "todo-gateway token"). providertest is an
// in-process authorization server for tests.
//
// Benchmarks: go test -run '^$' -bench . -benchmem ./providers/
package providers
