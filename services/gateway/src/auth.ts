import { createHash } from 'node:crypto';
import type { GraphQLFormattedError, OperationTypeNode } from 'graphql';
import { ConfigError, type Role } from '@textloop/service-kit';

/** Works when API_KEYS is unset outside production, with role admin. */
export const DEV_API_KEY = 'dev-admin-key';

const ROLES: readonly Role[] = ['admin', 'app', 'agent', 'viewer'];

/** Who is calling: the role decides what they may do, the name is what subgraphs may record. */
export interface Caller {
  role: Role;
  /** A stable, non-secret label of the key, e.g. app-3f9a0c12. */
  keyName: string;
}

export interface ApiKeys {
  find(token: string): Caller | undefined;
  /** Set when no API_KEYS were configured and the development key is in use. */
  devKey?: string;
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Parses API_KEYS, a comma-separated list of role:key pairs. */
export function parseApiKeys(text: string): ApiKeys {
  // Looked up by digest: lookups take the same time whichever prefix of a key matches.
  const byDigest = new Map<string, Caller>();
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const colon = entry.indexOf(':');
    const role = entry.slice(0, colon).trim() as Role;
    const key = entry.slice(colon + 1).trim();
    if (colon < 0 || !ROLES.includes(role) || !key) {
      throw new ConfigError(
        `API_KEYS entry "${colon < 0 ? entry : `${entry.slice(0, colon)}:…`}" is not role:key with role one of ${ROLES.join(', ')}; e.g. API_KEYS="admin:k1,app:k2"`,
      );
    }
    const hash = digest(key);
    if (byDigest.has(hash))
      throw new ConfigError(`API_KEYS lists the same key twice (roles ${byDigest.get(hash)!.role} and ${role}); give every key its own value`);
    byDigest.set(hash, { role, keyName: `${role}-${hash.slice(0, 8)}` });
  }
  if (byDigest.size === 0) throw new ConfigError('API_KEYS is set but lists no keys; e.g. API_KEYS="admin:k1,app:k2"');
  return { find: (token) => byDigest.get(digest(token)) };
}

/**
 * The keys of this deployment: API_KEYS, else (outside production) the development key. In
 * production an unset API_KEYS is a configuration error: the API would be open or unusable.
 */
export function loadApiKeys(env: NodeJS.ProcessEnv): ApiKeys {
  if (env.API_KEYS?.trim()) return parseApiKeys(env.API_KEYS);
  if (env.NODE_ENV === 'production') {
    throw new ConfigError(
      'API_KEYS is not set. In production the gateway needs its keys: API_KEYS="admin:<secret>,app:<secret>" (roles admin, app, agent, viewer).',
    );
  }
  return { ...parseApiKeys(`admin:${DEV_API_KEY}`), devKey: DEV_API_KEY };
}

export type Authentication = { ok: true; caller: Caller } | { ok: false; error: GraphQLFormattedError };

function unauthenticated(message: string): Authentication {
  return { ok: false, error: { message, extensions: { code: 'UNAUTHENTICATED' } } };
}

/** Checks the Authorization header. */
export function authenticate(keys: ApiKeys, authorization: string | undefined): Authentication {
  const how = `Send your API key as the header \`Authorization: Bearer <key>\`${keys.devKey ? ` (in development the key is ${keys.devKey})` : ' (keys are configured in API_KEYS)'}.`;
  if (!authorization?.trim()) return unauthenticated(`This request has no API key. ${how}`);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization.trim());
  if (!match) return unauthenticated(`The Authorization header is not a bearer token. ${how}`);
  const caller = keys.find(match[1]!);
  if (!caller) return unauthenticated(`This API key is not known. ${how}`);
  return { ok: true, caller };
}

/**
 * What each role may run. Coarse for now: viewers only read; every other role may run every
 * operation. Per-field rules (app: contacts, events, sending, verification; agent: conversations)
 * go here, keyed by the root fields of the operation.
 */
export function authorize(caller: Caller, operation: OperationTypeNode, _rootFields: readonly string[]): string | undefined {
  if (caller.role === 'viewer' && operation !== 'query') {
    return `A viewer key may only read; this ${operation} needs a key with role admin, app or agent.`;
  }
  return undefined;
}
