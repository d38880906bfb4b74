package mcp

import (
	"encoding/json"
	"net/url"
	"strings"
)

// wellKnownPRM is the RFC 9728 well-known prefix. For a resource with a path
// the path is appended after it (https://h/acme → https://h/.well-known/oauth-protected-resource/acme).
const wellKnownPRM = "/.well-known/oauth-protected-resource"

// protectedResourceMetadata is the RFC 9728 document. Unset optional fields
// are omitted.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// metadataURL is where the metadata of resource lives: the well-known path
// inserted between the host and the resource's path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil { // resources are validated when the config loads
		return ""
	}
	return u.Scheme + "://" + u.Host + wellKnownPRM + strings.TrimSuffix(u.EscapedPath(), "/")
}

// renderMetadata builds the document once per tenant; it is served as bytes.
func renderMetadata(m protectedResourceMetadata) []byte {
	if m.BearerMethodsSupported == nil {
		m.BearerMethodsSupported = []string{"header"}
	}
	b, _ := json.Marshal(m) // plain strings and slices cannot fail
	return b
}

// originOf is scheme://host[:port] of a URL, as a browser sends it in Origin.
func originOf(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
