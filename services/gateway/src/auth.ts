import { createHash } from 'node:crypto';
import type { DocumentNode, FragmentDefinitionNode, GraphQLFormattedError, OperationDefinitionNode, OperationTypeNode, SelectionSetNode } from 'graphql';
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

type Roles = readonly Role[];
const ADMIN: Roles = ['admin'];
const APP: Roles = ['admin', 'app'];
const AGENT: Roles = ['admin', 'agent'];
const EVERYONE: Roles = ROLES;

/**
 * Who may run what (runtime.md, Access): admin everything; app contacts, events, sending,
 * verification and reads; agent conversations and reads; viewer reads only. Every query field is
 * a read and open to every role. A mutation or subscription that is not listed here is admin-only,
 * so a new one stays closed until someone decides who may run it.
 */
export const ROLE_TABLE: Readonly<Record<'mutation' | 'subscription', Readonly<Record<string, Roles>>>> = {
  mutation: {
    // contacts and events: app
    createContact: APP,
    updateContact: APP,
    deleteContact: APP,
    importContacts: APP,
    unsubscribeContact: APP,
    resubscribeContact: APP,
    trackEvent: APP,
    // sending: app
    sendMessage: APP,
    sendMessages: APP,
    scheduleMessage: APP,
    cancelScheduledMessage: APP,
    sendSurvey: APP,
    // verification: app
    startVerification: APP,
    checkVerification: APP,
    // conversations: agent
    replyToConversation: AGENT,
    assignConversation: AGENT,
    resolveConversation: AGENT,
    // configuration and maintenance: admin (listed so the table reads complete; unlisted is admin too)
    createTemplate: ADMIN,
    updateTemplate: ADMIN,
    createAutomation: ADMIN,
    setAutomationEnabled: ADMIN,
    updateMessagingPolicy: ADMIN,
    createCampaign: ADMIN,
    launchCampaign: ADMIN,
    cancelCampaign: ADMIN,
    createSurvey: ADMIN,
    runDormancySweep: ADMIN,
  },
  subscription: {
    // the live inbox: agent
    messageReceived: AGENT,
    conversationUpdated: AGENT,
    // delivery progress is a read
    messageStatusChanged: EVERYONE,
  },
};

/** The roles that may run this root field of this kind of operation. */
export function rolesFor(operation: OperationTypeNode | `${OperationTypeNode}`, field: string): Roles {
  if (operation === 'query' || field === '__typename') return EVERYONE;
  return ROLE_TABLE[operation][field] ?? ADMIN;
}

function roleList(roles: Roles): string {
  return roles.length === 1 ? roles[0]! : `${roles.slice(0, -1).join(', ')} or ${roles[roles.length - 1]}`;
}

/**
 * Undefined when the caller's role may run every root field of the operation; otherwise a message
 * that names the first field it may not run and the roles that may.
 */
export function authorize(caller: Caller, operation: OperationTypeNode | `${OperationTypeNode}`, rootFields: readonly string[]): string | undefined {
  for (const field of rootFields) {
    const roles = rolesFor(operation, field);
    if (roles.includes(caller.role)) continue;
    const needs = `needs a key with role ${roleList(roles)}`;
    if (caller.role === 'viewer' && operation === 'mutation') return `A viewer key may only read; ${field} ${needs}.`;
    const article = caller.role === 'viewer' ? 'A' : 'An';
    const verb = operation === 'subscription' ? 'subscribe to' : 'run';
    return `${article} ${caller.role} key may not ${verb} ${field}; it ${needs}.`;
  }
  return undefined;
}

/**
 * The root field names an operation selects, through inline fragments and fragment spreads
 * (`mutation { ... on Mutation { createTemplate } }` must not slip past the role check). Skip and
 * include directives are ignored: a field counts even when it might be skipped.
 */
export function rootFieldsOf(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): string[] {
  const fields = new Set<string>();
  const seen = new Set<string>();
  const walk = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === 'Field') fields.add(selection.name.value);
      else if (selection.kind === 'InlineFragment') walk(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return [...fields];
}

/** The fragment definitions of a document, by name. */
export function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  return new Map(document.definitions.flatMap((d) => (d.kind === 'FragmentDefinition' ? [[d.name.value, d] as const] : [])));
}
