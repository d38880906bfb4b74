package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// claimSet is a token's claims (JWT payload or introspection answer), kept
// raw so that each claim's type is checked where it is read: a wrongly
// typed claim is a refusal with a name, never a silent zero value.
type claimSet map[string]json.RawMessage

func decodeClaims(payload []byte) (claimSet, error) {
	var m claimSet
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, invalid(reasonClaims, err)
	}
	return m, nil
}

// get returns a claim, treating JSON null as absent.
func (m claimSet) get(name string) (json.RawMessage, bool) {
	v, ok := m[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

func (m claimSet) str(name string) (string, bool, error) {
	v, ok := m.get(name)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", true, invalid(reasonClaimType(name), err)
	}
	return s, true, nil
}

func (m claimSet) boolean(name string) (bool, bool, error) {
	v, ok := m.get(name)
	if !ok {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		return false, true, invalid(reasonClaimType(name), err)
	}
	return b, true, nil
}

// numericDate reads an RFC 7519 NumericDate. A quoted number is refused:
// json.Number would accept "1700000000", and leniency here is how type
// confusion bugs start.
func (m claimSet) numericDate(name string) (time.Time, bool, error) {
	v, ok := m.get(name)
	if !ok {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		return time.Time{}, true, invalid(reasonClaimType(name), err)
	}
	// Beyond year 5000 (or negative) is not a date, and would overflow.
	if f < 0 || f > 95617584000 || math.IsNaN(f) {
		return time.Time{}, true, invalid(reasonClaimType(name), errors.New("numeric date out of range"))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// list reads a space-separated string or an array of strings: "scope" is a
// string (RFC 8693 §4.2), Okta and Hydra send "scp" as an array, Auth0
// "permissions" and Entra "roles" are arrays.
func (m claimSet) list(name string) ([]string, bool, error) {
	v, ok := m.get(name)
	if !ok {
		return nil, false, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return strings.Fields(s), true, nil
	}
	var a []string
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, true, invalid(reasonClaimType(name), err)
	}
	return a, true, nil
}

// values reads a role or group claim (see RoleGrants.Claim): its own name
// first, else a dotted path through nested objects. It holds an array of
// strings or one string, taken whole. An object missing on the way means
// the claim is absent; anything else on the way is a wrongly typed claim.
func (m claimSet) values(path string) ([]string, bool, error) {
	v, ok := m.get(path)
	if !ok {
		segs := strings.Split(path, ".")
		if len(segs) < 2 {
			return nil, false, nil
		}
		cur := m
		for i, seg := range segs {
			v, ok = cur.get(seg)
			if !ok {
				return nil, false, nil
			}
			if i == len(segs)-1 {
				break
			}
			cur = nil
			if err := json.Unmarshal(v, &cur); err != nil || cur == nil {
				return nil, true, invalid(reasonClaimType(strings.Join(segs[:i+1], ".")), err)
			}
		}
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return []string{s}, true, nil
	}
	var a []string
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, true, invalid(reasonClaimType(path), err)
	}
	return a, true, nil
}

// audience reads aud: one string (not split) or an array of strings.
func (m claimSet) audience() ([]string, bool, error) {
	v, ok := m.get("aud")
	if !ok {
		return nil, false, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return []string{s}, true, nil
	}
	var a []string
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, true, invalid(reasonClaimType("aud"), err)
	}
	return a, true, nil
}

// claimRules are the differences between a JWT and an introspection answer.
type claimRules struct {
	// introspection: exp is optional, since active=true already says the
	// token is current (Logto answers just {active, sub}).
	introspection        bool
	allowMissingIssuer   bool
	allowMissingAudience bool
	// acceptedClients, when set, are the only client ids accepted.
	acceptedClients []string
}

// principal applies the checks common to both token kinds (issuer, time,
// subject, audience strategy, scopes) and builds the Principal. tr may be
// nil; every detail is formatted only when it is not.
func (p *Provider) principal(m claimSet, kind TokenKind, r claimRules, tr *Trace) (*Principal, error) {
	now := p.now()

	iss, ok, err := m.str("iss")
	switch {
	case err != nil:
		return nil, tr.fail(stepIssuer, err)
	case !ok && !r.allowMissingIssuer:
		err := invalid(reasonNoIssuer, nil)
		if tr != nil && r.introspection {
			tr.failWith(stepIssuer, err, "the introspection answer has no iss; if this authorization server never sends one, "+
				"provider.introspection.allow_missing_issuer accepts such answers for the clients listed in accepted_clients, and any token those clients hold passes")
			return nil, err
		}
		return nil, tr.fail(stepIssuer, err)
	case ok && iss != p.issuer:
		err := invalid(reasonIssuer, nil)
		if tr != nil {
			tr.failWith(stepIssuer, err, "iss "+quoted(iss)+", but the tenant trusts "+quoted(p.issuer))
		}
		return nil, err
	}
	if !ok {
		iss = p.issuer
		tr.warn(stepIssuer, "no iss; accepted because allow_missing_issuer is set",
			"the answer does not say which issuer the token comes from: it is accepted because its client is one of accepted_clients")
	} else if tr != nil {
		tr.add(stepIssuer, true, "iss "+quoted(iss)+" is the tenant's issuer")
	}

	exp, hasExp, err := m.numericDate("exp")
	switch {
	case err != nil:
		return nil, tr.fail(stepExpiry, err)
	case !hasExp && !r.introspection:
		return nil, tr.fail(stepExpiry, invalid(reasonNoExpiry, nil))
	case hasExp && now.After(exp.Add(p.leeway)):
		err := invalid(reasonExpired, nil)
		if tr != nil {
			tr.failWith(stepExpiry, err, "exp "+at(exp, now)+", beyond the "+p.leeway.String()+" leeway; now "+now.UTC().Format(time.RFC3339))
		}
		return nil, err
	}
	if tr != nil {
		if hasExp {
			tr.add(stepExpiry, true, "exp "+at(exp, now)+"; leeway "+p.leeway.String())
		} else {
			tr.add(stepExpiry, true, "no exp: the introspection answer's active=true vouches for it")
		}
	}
	nbf, ok, err := m.numericDate("nbf")
	switch {
	case err != nil:
		return nil, tr.fail(stepNotBefore, err)
	case ok && now.Add(p.leeway).Before(nbf):
		err := invalid(reasonNotYetValid, nil)
		if tr != nil {
			tr.failWith(stepNotBefore, err, "nbf "+at(nbf, now)+", beyond the "+p.leeway.String()+" leeway")
		}
		return nil, err
	}
	if tr != nil {
		if ok {
			tr.add(stepNotBefore, true, "nbf "+at(nbf, now))
		} else {
			tr.add(stepNotBefore, true, "no nbf")
		}
	}
	iat, ok, err := m.numericDate("iat")
	switch {
	case err != nil:
		return nil, tr.fail(stepIssuedAt, err)
	case ok && iat.After(now.Add(p.leeway)):
		err := invalid(reasonIssuedFuture, nil)
		if tr != nil {
			tr.failWith(stepIssuedAt, err, "iat "+at(iat, now)+", beyond the "+p.leeway.String()+" leeway")
		}
		return nil, err
	}
	if tr != nil {
		if ok {
			tr.add(stepIssuedAt, true, "iat "+at(iat, now))
		} else {
			tr.add(stepIssuedAt, true, "no iat")
		}
	}

	var clientID, clientClaim string
	for _, name := range p.claims.ClientID {
		v, _, err := m.str(name)
		if err != nil {
			return nil, tr.fail(stepClient, err)
		}
		if v != "" {
			clientID, clientClaim = v, name
			break
		}
	}

	sub, _, err := m.str(p.claims.Subject)
	subDetail := p.claims.Subject + " " + quoted(sub)
	switch {
	case err != nil:
		return nil, tr.fail(stepSubject, err)
	case sub == "" && r.introspection && clientID != "":
		// RFC 7662 makes sub optional, and a client-credentials token has
		// no resource owner: the client acts for itself, as RFC 9068 §2.2
		// spells out for JWTs (sub = client_id). Without this, such tokens
		// from node-oidc-provider (and so Logto) could never be used.
		sub = clientID
		subDetail = "no " + p.claims.Subject + ": a client acting for itself; subject = " + clientClaim + " " + quoted(clientID)
	case sub == "":
		err := invalid(reasonNoSubject, nil)
		if tr != nil {
			tr.failWith(stepSubject, err, "claim "+quoted(p.claims.Subject)+" is absent or empty")
		}
		return nil, err
	}
	if tr != nil {
		tr.add(stepSubject, true, subDetail)
	}

	aud, hasAud, err := m.audience()
	if err != nil {
		return nil, tr.fail(stepAudience, err)
	}
	switch p.aud.Strategy {
	case AudienceResource, AudienceValues:
		want := p.aud.Values
		reason := reasonAudValues
		if p.aud.Strategy == AudienceResource {
			want, reason = []string{p.resource}, reasonAudResource
		}
		switch {
		case !hasAud && !r.allowMissingAudience:
			err := invalid(reasonNoAudience, nil)
			if tr != nil && r.introspection {
				tr.failWith(stepAudience, err, "the introspection answer has no aud (LemonLDAP::NG's and zitadel's never do); "+
					"provider.introspection.allow_missing_audience accepts such answers for the clients listed in accepted_clients, and any token those clients hold passes, whatever API it was issued for")
				return nil, err
			}
			return nil, tr.fail(stepAudience, err)
		case hasAud && !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(want, a) }):
			err := invalid(reason, nil)
			if tr != nil {
				tr.failWith(stepAudience, err, "aud "+quotedList(aud)+"; strategy "+string(p.aud.Strategy)+" wants one of "+quotedList(want))
			}
			return nil, err
		}
		if tr != nil {
			if hasAud {
				tr.add(stepAudience, true, "aud "+quotedList(aud)+" contains one of "+quotedList(want)+" (strategy "+string(p.aud.Strategy)+")")
			} else {
				tr.warn(stepAudience, "no aud; accepted because allow_missing_audience is set",
					"the answer does not say which resource the token is for: any token of an accepted client passes, whatever API it was issued for")
			}
		}
	case AudienceScope:
		// Nothing to check: the issuer is pinned above and only prefixed
		// scopes count below.
		if tr != nil {
			tr.add(stepAudience, true, "strategy scope: aud is not checked; only scopes starting with "+quoted(p.aud.Prefix)+" count")
		}
	}

	var scopes []string
	var read []string // for the trace: what each claim held
	for _, name := range p.claims.Scopes {
		vals, present, err := m.list(name)
		if err != nil {
			return nil, tr.fail(stepScopes, err)
		}
		if tr != nil {
			if present {
				read = append(read, name+" "+quotedList(vals))
			} else {
				read = append(read, name+" absent")
			}
		}
		for _, v := range vals {
			if v != "" && !slices.Contains(scopes, v) {
				scopes = append(scopes, v)
			}
		}
	}
	if tr != nil {
		tr.add(stepScopes, true, strings.Join(read, "; "))
	}

	var roles []string
	if rg := p.claims.Roles; rg != nil {
		vals, present, err := m.values(rg.Claim)
		if err != nil {
			return nil, tr.fail(stepRoles, err)
		}
		for _, v := range vals {
			if v != "" && !slices.Contains(roles, v) {
				roles = append(roles, v)
			}
		}
		if tr != nil {
			if present {
				tr.add(stepRoles, true, rg.Claim+" "+quotedList(vals))
			} else {
				tr.add(stepRoles, true, rg.Claim+" absent: no permission from roles or groups")
			}
		}
	}

	pr := &Principal{
		Tenant:      p.tenant,
		Issuer:      iss,
		Subject:     sub,
		ClientID:    clientID,
		Scopes:      scopes,
		Roles:       roles,
		Permissions: p.permissions(scopes, roles),
		Audience:    aud,
		Kind:        kind,
	}
	if hasExp {
		pr.Expiry = exp
	}
	if len(r.acceptedClients) > 0 && !slices.Contains(r.acceptedClients, clientID) {
		err := invalid(reasonClientNotAccepted, nil)
		if tr != nil {
			tr.add(stepPermissions, true, p.describePermissions(scopes, roles, pr.Permissions))
			tr.failWith(stepClient, err, "client "+quoted(clientID)+"; accepted_clients lists "+quotedList(r.acceptedClients))
		}
		return nil, err
	}
	if tr != nil {
		tr.add(stepPermissions, true, p.describePermissions(scopes, roles, pr.Permissions))
		if clientID != "" {
			tr.add(stepClient, true, clientClaim+" "+quoted(clientID))
		} else {
			tr.add(stepClient, true, "none of "+strings.Join(p.claims.ClientID, ", ")+" is present")
		}
	}
	return pr, nil
}

// permissions maps raw scopes through the tenant's scope map, and role or
// group values through its role grants; a permission granted either way
// counts. Under the scope strategy only scopes carrying the prefix count,
// so that a bare "create" from some other API cannot grant anything here.
func (p *Provider) permissions(scopes, roles []string) map[Permission]bool {
	perms := make(map[Permission]bool, len(p.perms))
	for _, perm := range p.perms {
		if p.scopeGrants(scopes, perm) || len(p.claims.Roles.granting(roles, perm)) > 0 {
			perms[perm] = true
		}
	}
	return perms
}

// scopeGrants reports whether scopes hold the tenant's scope for perm.
func (p *Provider) scopeGrants(scopes []string, perm Permission) bool {
	want := p.scopes[perm]
	if want == "" {
		return false
	}
	if p.aud.Strategy == AudienceScope && !strings.HasPrefix(want, p.aud.Prefix) {
		return false
	}
	return slices.Contains(scopes, want)
}
