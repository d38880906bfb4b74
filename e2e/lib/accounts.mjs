// Who exists at the test authorization servers: the tutorial's roles and
// users, and the two static clients. Kept apart from lib/idp.mjs so that
// tests can name them without loading node-oidc-provider.

/** The tutorial's permissions, as scopes of every todo resource. */
export const TODO_SCOPES = ['create:todos', 'read:todos', 'delete:todos'];

/** Roles as in the tutorial: the scopes each one may be granted. */
export const ROLES = {
  Admin: ['create:todos', 'read:todos', 'delete:todos'],
  User: ['create:todos'],
};

/**
 * The group each role is when a provider grants by group rather than by
 * scope (Dex, Keycloak, Entra): the names a tenant's claims.roles maps.
 */
export const GROUPS = { Admin: 'todo-admins', User: 'todo-users' };

/**
 * The tutorial's users plus one with no todo role. Loopback-only test
 * accounts: the passwords are printed by `make demo` on purpose.
 */
export const USERS = {
  admin: { password: 'admin-password', name: 'Admin', roles: ['Admin'] },
  user: { password: 'user-password', name: 'User', roles: ['User'] },
  guest: { password: 'guest-password', name: 'Guest (no todo role)', roles: [] },
};

/** Sign-in credentials of a user, for the headless browser. */
export const credentials = (login) => ({ login, password: USERS[login].password });

/** The gateway's introspection client. */
export const GATEWAY_CLIENT_ID = 'todo-gateway';
/** The machine-to-machine (client credentials) client. */
export const M2M_CLIENT_ID = 'm2m-todo-client';

/**
 * The provider's sign-out page (node-oidc-provider's end_session_endpoint,
 * lib/idp.mjs) and its button that signs out: how a person switches users.
 */
export const signOutUrl = (issuer) => `${issuer}/session/end`;
export const SIGN_OUT_BUTTON = 'Yes, sign me out';
