package tenants

import "github.com/todo-gateway/todo-gateway/providers"

// ProviderSettings is what package providers needs to verify this tenant's tokens.
func (t *Tenant) ProviderSettings() providers.Settings {
	return providers.Settings{
		Tenant:   t.ID,
		Resource: t.Resource,
		Config:   t.Provider,
		Audience: t.Audience,
		Claims:   t.Claims,
		Scopes:   t.Scopes,
		// An upstream's permissions are its own; nil for the todo server.
		Permissions: t.Server.PermissionList(),
	}
}
