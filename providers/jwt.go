package providers

import (
	"context"
	"errors"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// allAsymmetricAlgs is every algorithm a tenant may allow.
var allAsymmetricAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// parseAlgs lets go-jose parse a header whatever its alg, so the verifier
// can say precisely why an algorithm is refused. Parsing is not verifying:
// HMAC and none never reach a key.
var parseAlgs = slices.Concat(allAsymmetricAlgs, []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512, "none"})

func isAsymmetricAlg(a string) bool {
	return slices.Contains(allAsymmetricAlgs, jose.SignatureAlgorithm(a))
}

// parseCompactJWS returns the parsed token when raw is a compact JWS, nil
// otherwise. It decides the auto mode's JWT-or-opaque question.
func parseCompactJWS(raw string) *jose.JSONWebSignature {
	if strings.Count(raw, ".") != 2 {
		return nil
	}
	jws, err := jose.ParseSignedCompact(raw, parseAlgs)
	if err != nil {
		return nil
	}
	return jws
}

// normaliseType folds "application/at+jwt" and "AT+JWT" to "at+jwt"
// (RFC 7515 §4.1.9: media types are case-insensitive and the prefix may be
// omitted).
func normaliseType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// verifyJWT checks a JWT access token (RFC 9068 §4). go-jose parses it,
// go-oidc checks the alg allow-list, the signature (through our keySet) and
// the exact issuer; claims.go checks the rest. tr may be nil.
func (p *Provider) verifyJWT(ctx context.Context, raw string, jws *jose.JSONWebSignature, tr *Trace) (*Principal, error) {
	if jws == nil {
		switch strings.Count(raw, ".") {
		case 2:
		case 4:
			return nil, tr.failWith(stepHeader, invalid(reasonJWE, nil),
				`five dot-separated parts: a JWE, which the gateway cannot decrypt; if this provider encrypts its access tokens, verify them by introspection ("token": "introspection")`)
		default:
			return nil, tr.fail(stepHeader, invalid(reasonMalformed, errors.New("a compact JWS has three dot-separated parts")))
		}
		var err error
		jws, err = jose.ParseSignedCompact(raw, parseAlgs)
		if err != nil {
			var ue *jose.ErrUnexpectedSignatureAlgorithm
			if errors.As(err, &ue) {
				return nil, tr.fail(stepHeader, invalid(reasonUnsupported, err))
			}
			return nil, tr.fail(stepHeader, invalid(reasonMalformed, err))
		}
	}
	if len(jws.Signatures) != 1 {
		return nil, tr.fail(stepHeader, invalid(reasonMalformed, errors.New("expected exactly one signature")))
	}
	h := jws.Signatures[0].Header
	alg := h.Algorithm
	if tr != nil {
		tr.add(stepHeader, true, "a signed JWT: alg "+quoted(alg)+", "+kidText(h.KeyID))
	}
	switch {
	case alg == "none":
		return nil, tr.fail(stepAlgorithm, invalid(reasonAlgNone, nil))
	case strings.HasPrefix(alg, "HS"):
		return nil, tr.fail(stepAlgorithm, invalid(reasonAlgHMAC, nil))
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, tr.fail(stepHeader, invalid(reasonCrit, nil))
	}
	if err := p.checkType(h); err != nil {
		if tr != nil {
			tr.failWith(stepTyp, err, "the tenant accepts "+strings.Join(p.jwtTypesWritten, ", "))
		}
		return nil, err
	}
	if tr != nil {
		tr.add(stepTyp, true, describeType(h)+" is accepted: the tenant accepts "+strings.Join(p.jwtTypesWritten, ", "))
	}

	ep, err := p.disc.get(ctx)
	if err != nil {
		return nil, tr.fail(stepDiscovery, err)
	}
	if ep.verifier == nil {
		return nil, tr.fail(stepDiscovery, internal(reasonNoJWKS, errors.New("neither metadata nor configuration gives a jwks_uri")))
	}
	if tr != nil {
		tr.add(stepDiscovery, true, ep.describe()+"; jwks_uri "+ep.jwks.url)
	}
	if !slices.Contains(ep.algs, alg) {
		err := invalid(reasonAlgNotAllowed(alg), nil)
		if tr != nil {
			tr.failWith(stepAlgorithm, err, p.describeAlgs(ep))
		}
		return nil, err
	}
	if tr != nil {
		tr.add(stepAlgorithm, true, alg+" is allowed: "+p.describeAlgs(ep))
	}

	st := &verifyState{jws: jws, tr: tr}
	idt, err := ep.verifier.Verify(context.WithValue(ctx, stateKey{}, st), raw)
	if err != nil {
		if st.err != nil {
			// The keySet has recorded the key or signature step.
			return nil, st.err
		}
		if st.payload == nil {
			// go-oidc refused before asking for the signature.
			return nil, tr.fail(stepClaims, invalid(reasonMalformed, err))
		}
		// The signature verified, so go-oidc objected to a claim (issuer or a
		// standard claim of the wrong type). Re-run our own checks to name it.
		m, cerr := decodeClaims(st.payload)
		if cerr != nil {
			return nil, tr.fail(stepClaims, cerr)
		}
		if _, perr := p.principal(m, TokenKindJWT, claimRules{}, tr); perr != nil {
			return nil, perr
		}
		return nil, tr.fail(stepClaims, invalid(reasonMalformed, err))
	}
	var m claimSet
	if err := idt.Claims(&m); err != nil {
		return nil, tr.fail(stepClaims, invalid(reasonClaims, err))
	}
	if claim := p.idTokenClaim(m, ep); claim != "" {
		err := invalid(reasonIDToken(claim), nil)
		if tr != nil {
			tr.failWith(stepTokenUse, err, "it carries "+claim+", which OpenID Connect defines for ID tokens only; if this provider puts it in access tokens too, list it in provider.allow_id_token_claims")
		}
		return nil, err
	}
	if tr != nil {
		detail := "no claim of ID tokens only (" + strings.Join(idTokenOnlyClaims, ", ") + ")"
		if q, known := p.quirkOf(ep); known && q.sameTokens {
			tr.warn(stepTokenUse, detail, sameTokensWarning(q))
		} else {
			tr.add(stepTokenUse, true, detail)
		}
	}
	return p.principal(m, TokenKindJWT, claimRules{}, tr)
}

// checkType applies the tenant's typ policy. A missing typ counts as "JWT"
// (RFC 7519 §5.1 makes typ optional and "JWT" its meaning), so it passes
// only where "JWT" is accepted.
func (p *Provider) checkType(h jose.Header) error {
	raw, present := h.ExtraHeaders[jose.HeaderType]
	typ, ok := raw.(string)
	if present && !ok {
		return invalid(reasonType("(not a string)"), nil)
	}
	norm := "jwt"
	if present {
		norm = normaliseType(typ)
	}
	if slices.Contains(p.jwtTypes, norm) {
		return nil
	}
	if !present {
		return invalid(reasonNoType, nil)
	}
	return invalid(reasonType(typ), nil)
}

// describeType says, for a trace, which typ checkType accepted.
func describeType(h jose.Header) string {
	typ, ok := h.ExtraHeaders[jose.HeaderType].(string)
	switch {
	case !ok:
		return "no typ header, which counts as JWT,"
	case normaliseType(typ) != typ:
		return quoted(typ) + " (" + normaliseType(typ) + ")"
	default:
		return quoted(typ)
	}
}
