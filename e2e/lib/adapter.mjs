// A storage adapter for node-oidc-provider: an in-memory map that can be
// persisted to a JSON file, so that a provider stopped and started again (the
// "provider restart" scenarios) keeps its registered clients, sessions, grants
// and opaque tokens, as a real authorization server with a database would.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'ClientCredentials',
]);

const now = () => Math.floor(Date.now() / 1000);

/**
 * One store shared by every model of a provider.
 */
export class Store {
  /** @param {string|undefined} file JSON file to persist to, or undefined */
  constructor(file) {
    this.file = file;
    /** @type {Map<string, {payload: any, exp?: number}>} */
    this.entries = new Map();
    /** Values that belong to the process's identity, kept across restarts. */
    this.meta = {};
    if (file) {
      try {
        const doc = JSON.parse(readFileSync(file, 'utf8'));
        this.meta = doc.meta ?? {};
        for (const [k, v] of Object.entries(doc.entries ?? {})) this.entries.set(k, v);
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
    }
  }

  get(key) {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.exp !== undefined && e.exp <= now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.payload;
  }

  set(key, payload, expiresIn) {
    this.entries.set(key, { payload, exp: typeof expiresIn === 'number' ? now() + expiresIn : undefined });
    this.save();
  }

  delete(key) {
    if (this.entries.delete(key)) this.save();
  }

  setMeta(name, value) {
    this.meta[name] = value;
    this.save();
  }

  save() {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify({ meta: this.meta, entries: Object.fromEntries(this.entries) }), { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  /** The adapter class node-oidc-provider instantiates once per model. */
  adapter() {
    const store = this;
    return class Adapter {
      constructor(model) { this.model = model; }

      key(id) { return `${this.model}:${id}`; }

      async upsert(id, payload, expiresIn) {
        store.set(this.key(id), payload, expiresIn);
        if (grantable.has(this.model) && payload.grantId) {
          const gk = `grant:${payload.grantId}`;
          const members = store.get(gk) ?? [];
          members.push(this.key(id));
          store.set(gk, members, expiresIn);
        }
        if (payload.uid) store.set(`sessionUid:${payload.uid}`, id, expiresIn);
        if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
      }

      async find(id) { return store.get(this.key(id)); }

      async findByUid(uid) {
        const id = store.get(`sessionUid:${uid}`);
        return id ? this.find(id) : undefined;
      }

      async findByUserCode(userCode) {
        const id = store.get(`userCode:${userCode}`);
        return id ? this.find(id) : undefined;
      }

      async consume(id) {
        const payload = store.get(this.key(id));
        if (payload) {
          payload.consumed = now();
          store.save();
        }
      }

      async destroy(id) { store.delete(this.key(id)); }

      async revokeByGrantId(grantId) {
        const gk = `grant:${grantId}`;
        for (const key of store.get(gk) ?? []) store.delete(key);
        store.delete(gk);
      }
    };
  }
}
