package upstream

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/todo-gateway/todo-gateway/providers"
)

// Sessions of the 2025 transports live in the upstream, which names them
// with Mcp-Session-Id. The MCP security best practices tell a server to
// bind a session to its user, so that a session id someone else learns is
// worth nothing to them; the upstream cannot, since it never sees the
// client's token. So the gateway binds it, without keeping any state (any
// instance serves any request): the client gets the upstream's id with a
// MAC of (tenant, issuer, subject, id) appended, under a key every
// instance shares (derived from the assertion signing key), and a request
// whose id does not carry the caller's MAC is answered 404, as for an
// ended session, never forwarded.

const (
	sessionHeader = "Mcp-Session-Id"
	// macLen is the MAC's length in base64url characters (128 bits).
	macLen = 22
)

// sessionBinder binds session ids to callers.
type sessionBinder struct {
	key    []byte
	tenant string
}

func (b sessionBinder) mac(p *providers.Principal, id string) string {
	m := hmac.New(sha256.New, b.key)
	for _, s := range []string{b.tenant, p.Issuer, p.Subject, id} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:macLen]
}

// bind is the id the client gets for the upstream's id.
func (b sessionBinder) bind(p *providers.Principal, id string) string {
	return id + "." + b.mac(p, id)
}

// unbind is the upstream's id in the client's bound id, and whether the
// id was bound to this caller.
func (b sessionBinder) unbind(p *providers.Principal, bound string) (string, bool) {
	i := strings.LastIndexByte(bound, '.')
	if i < 0 {
		return "", false
	}
	id, mac := bound[:i], bound[i+1:]
	return id, hmac.Equal([]byte(mac), []byte(b.mac(p, id)))
}
