import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type {
  DefinitionNode,
  DocumentNode,
  ExecutionArgs,
  FieldDefinitionNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLError,
  GraphQLFormattedError,
  GraphQLSchema,
  ObjectTypeDefinitionNode,
  OperationDefinitionNode,
  SelectionSetNode,
  TypeNode,
} from 'graphql';
import type { Context, ExecutionResult, FormattedExecutionResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { authenticate, authorize, fragmentsOf, rootFieldsOf, type ApiKeys, type Caller } from './auth';
import { graphql as g } from './graphql-cjs';
import { LiveFeed, type FeedState, type LiveEvent, type Topic } from './live-feed';

/** contract/subscriptions.graphql, as this gateway serves it. */
export const SUBSCRIPTIONS_SDL = readFileSync(new URL('./subscriptions.graphql', import.meta.url), 'utf8');

/** What an execution through the federated API answers (already formatted for clients). */
export interface FederatedResult {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLFormattedError[];
}

export interface FederatedRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** How each subscription field is fed: the NATS topic, which events count, and the entity to fetch. */
interface LiveField {
  topic: Topic;
  /** The Query field that fetches the entity by id, and its type. */
  entity: { field: string; type: string };
  /** The entity id, and the values of this event that the payload shows (the status it announces), or undefined to skip it. */
  accept(event: LiveEvent, args: Record<string, unknown>): { id: string; overrides: Record<string, unknown> } | undefined;
}

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);

export const LIVE_FIELDS: Readonly<Record<string, LiveField>> = {
  messageReceived: {
    topic: 'received',
    entity: { field: 'message', type: 'Message' },
    accept: (event) => {
      const id = str(event.data.messageId);
      return id ? { id, overrides: {} } : undefined;
    },
  },
  messageStatusChanged: {
    topic: 'status',
    entity: { field: 'message', type: 'Message' },
    accept: (event, args) => {
      const id = str(event.data.messageId);
      if (!id || event.subject === 'messaging.message.received') return undefined;
      if (args.contactId != null && event.data.contactId !== args.contactId) return undefined;
      return { id, overrides: str(event.data.status) ? { status: event.data.status } : {} };
    },
  },
  conversationUpdated: {
    topic: 'conversation',
    entity: { field: 'conversation', type: 'Conversation' },
    accept: (event, args) => {
      const id = str(event.data.conversationId);
      const status = str(event.data.status);
      if (!id || (args.status != null && status !== args.status)) return undefined;
      const overrides: Record<string, unknown> = status ? { status } : {};
      if ('assignee' in event.data) overrides.assignee = event.data.assignee ?? null;
      return { id, overrides };
    },
  },
};

function namedType(type: TypeNode): string {
  return type.kind === 'NamedType' ? type.name.value : namedType(type.type);
}

export interface LiveSchema {
  /** The API schema plus the Subscription fields it can serve. */
  schema: GraphQLSchema;
  /** Subscription fields of the contract this gateway cannot serve yet, with why. */
  unavailable: ReadonlyMap<string, string>;
}

/**
 * The composed API schema plus contract/subscriptions.graphql. A subscription field is left out
 * (and refused on subscribe with the reason) when the supergraph lacks a type it uses or the
 * Query field that fetches its entity, e.g. conversationUpdated before messaging serves conversations.
 */
export function buildLiveSchema(apiSchema: GraphQLSchema, subscriptionsSdl = SUBSCRIPTIONS_SDL): LiveSchema {
  const contract = g
    .parse(subscriptionsSdl)
    .definitions.find((d): d is ObjectTypeDefinitionNode => d.kind === 'ObjectTypeDefinition' && d.name.value === 'Subscription');
  if (!contract) throw new Error('subscriptions.graphql has no Subscription type');
  const unavailable = new Map<string, string>();
  const queryFields = apiSchema.getQueryType()?.getFields() ?? {};
  const kept: FieldDefinitionNode[] = [];
  for (const field of contract.fields ?? []) {
    const name = field.name.value;
    const spec = LIVE_FIELDS[name];
    if (!spec) {
      unavailable.set(name, `${name} is in the contract but this gateway has no feed for it.`);
      continue;
    }
    const missing = [field.type, ...(field.arguments ?? []).map((a) => a.type)]
      .map(namedType)
      .filter((t, i, all) => all.indexOf(t) === i && !apiSchema.getType(t))
      .map((t) => `type ${t}`);
    if (!queryFields[spec.entity.field]?.args.some((a) => a.name === 'id')) missing.unshift(`Query.${spec.entity.field}(id:)`);
    if (missing.length) {
      unavailable.set(
        name,
        `${name} is not available on this gateway yet: the composed API has no ${missing.join(', ')} ` +
          '(the service that serves them is not part of this supergraph). Compose a supergraph that has them (`pnpm compose`) and restart the gateway.',
      );
      continue;
    }
    kept.push(field);
  }
  const apiSdl = g.printSchema(apiSchema);
  const sdl = kept.length ? `${apiSdl}\n\n${g.print({ ...contract, fields: kept })}\n` : apiSdl;
  return { schema: g.buildSchema(sdl), unavailable };
}

/** The one root field of a (validated) subscription, looked up through fragments. */
function rootField(operation: OperationDefinitionNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>): FieldNode | undefined {
  const find = (set: SelectionSetNode, seen: Set<string>): FieldNode | undefined => {
    for (const s of set.selections) {
      if (s.kind === 'Field') {
        if (s.name.value !== '__typename') return s;
      } else if (s.kind === 'InlineFragment') {
        const f = find(s.selectionSet, seen);
        if (f) return f;
      } else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const fragment = fragments.get(s.name.value);
        const f = fragment && find(fragment.selectionSet, seen);
        if (f) return f;
      }
    }
    return undefined;
  };
  return find(operation.selectionSet, new Set());
}

export interface EntityQuery {
  /** A query that fetches the entity with the subscriber's selection, under the subscription field's response key. */
  query: string;
  /** The variable that carries the entity id. */
  idVariable: string;
  /** The subscriber's variables the query uses. */
  variables: string[];
  /** Response key of the subscription field (its alias or name). */
  responseKey: string;
}

/**
 * Turns `subscription S($v: …) { alias: messageReceived { …selection… } } fragment F …` into
 * `query S($textloopId: ID!, $v: …) { alias: message(id: $textloopId) { …selection… } } fragment F …`,
 * keeping the field's directives and only the fragments and variables the selection uses. Its
 * answer has the shape of one subscription payload.
 */
export function buildEntityQuery(document: DocumentNode, operation: OperationDefinitionNode, field: FieldNode, entityField: string): EntityQuery {
  const fragments = fragmentsOf(document);
  const declared = new Set((operation.variableDefinitions ?? []).map((v) => v.variable.name.value));
  let idVariable = 'textloopId';
  for (let n = 2; declared.has(idVariable); n++) idVariable = `textloopId${n}`;
  const responseKey = field.alias?.value ?? field.name.value;
  const entity: FieldNode = {
    ...field,
    alias: { kind: g.Kind.NAME, value: responseKey },
    name: { kind: g.Kind.NAME, value: entityField },
    arguments: [
      {
        kind: g.Kind.ARGUMENT,
        name: { kind: g.Kind.NAME, value: 'id' },
        value: { kind: g.Kind.VARIABLE, name: { kind: g.Kind.NAME, value: idVariable } },
      },
    ],
  };
  // The fragments the entity selection uses, transitively.
  const used: FragmentDefinitionNode[] = [];
  const pending = [entity as DefinitionNode | FieldNode];
  const names = new Set<string>();
  const variables = new Set<string>();
  while (pending.length) {
    g.visit(pending.pop()!, {
      FragmentSpread(node) {
        const fragment = fragments.get(node.name.value);
        if (fragment && !names.has(fragment.name.value)) {
          names.add(fragment.name.value);
          used.push(fragment);
          pending.push(fragment);
        }
      },
      Variable(node) {
        variables.add(node.name.value);
      },
    });
  }
  variables.delete(idVariable);
  const query: OperationDefinitionNode = {
    kind: g.Kind.OPERATION_DEFINITION,
    operation: g.OperationTypeNode.QUERY,
    ...(operation.name ? { name: operation.name } : {}),
    variableDefinitions: [
      {
        kind: g.Kind.VARIABLE_DEFINITION,
        variable: { kind: g.Kind.VARIABLE, name: { kind: g.Kind.NAME, value: idVariable } },
        type: { kind: g.Kind.NON_NULL_TYPE, type: { kind: g.Kind.NAMED_TYPE, name: { kind: g.Kind.NAME, value: 'ID' } } },
      },
      ...(operation.variableDefinitions ?? []).filter((v) => variables.has(v.variable.name.value)),
    ],
    selectionSet: { kind: g.Kind.SELECTION_SET, selections: [entity] },
  };
  return {
    query: g.print({ kind: g.Kind.DOCUMENT, definitions: [query, ...used] }),
    idVariable,
    variables: [...variables],
    responseKey,
  };
}

/**
 * The response keys under which a selection on `typeName` shows `fieldName` (through fragments
 * that apply to the type), so a payload can show the value its event announces.
 */
export function responseKeysOf(
  selectionSet: SelectionSetNode | undefined,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  typeName: string,
  fieldName: string,
): string[] {
  const keys = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === 'Field') {
        if (s.name.value === fieldName) keys.add(s.alias?.value ?? s.name.value);
      } else if (s.kind === 'InlineFragment') {
        if (!s.typeCondition || s.typeCondition.name.value === typeName) walk(s.selectionSet);
      } else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const fragment = fragments.get(s.name.value);
        if (fragment && fragment.typeCondition.name.value === typeName) walk(fragment.selectionSet);
      }
    }
  };
  if (selectionSet) walk(selectionSet);
  return [...keys];
}

/** A subscription ready to run: who asked, what to fetch per event. */
interface Prepared {
  caller: Caller;
  spec: LiveField;
  args: Record<string, unknown>;
  entity: EntityQuery;
  variables: Record<string, unknown>;
  /** Field name → the response keys that show it, for the event's own values. */
  overrideKeys: Map<string, string[]>;
}

/** Carried from onSubscribe to execute/subscribe. */
interface LiveContext {
  caller: Caller;
  request: FederatedRequest;
  prepared?: Prepared;
}

/** Per-subscriber payloads waiting to be fetched; beyond this a slow client loses events. */
const MAX_PENDING = 1000;

/**
 * One subscriber's stream: fetches run concurrently, payloads leave in event order. `return()`
 * ends it at once, even while it waits for the next event.
 */
class LiveStream implements AsyncIterableIterator<ExecutionResult> {
  private queue: Array<Promise<FederatedResult | undefined>> = [];
  private wake?: () => void;
  private done = false;
  private warned = false;

  constructor(
    private readonly logger: Logger,
    private readonly onClose: () => void,
  ) {}

  push(payload: Promise<FederatedResult | undefined>): void {
    if (this.done) return;
    if (this.queue.length >= MAX_PENDING) {
      if (!this.warned) this.logger.warn({ pending: this.queue.length }, 'a subscriber is not keeping up; dropping its live updates');
      this.warned = true;
      return;
    }
    this.queue.push(payload);
    this.wake?.();
  }

  async next(): Promise<IteratorResult<ExecutionResult>> {
    while (!this.done) {
      const head = this.queue.shift();
      if (!head) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const result = await head;
      if (result && !this.done) {
        if (this.queue.length < MAX_PENDING / 2) this.warned = false;
        return { value: result as unknown as ExecutionResult, done: false };
      }
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.close();
    return { value: undefined, done: true };
  }

  async throw(err: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.close();
    throw err;
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.onClose();
    this.wake?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function error(message: string, code: string, extra: Record<string, unknown> = {}) {
  return new g.GraphQLError(message, { extensions: { code, ...extra } });
}

/** Short enough for a WebSocket close reason (123 bytes). */
function unauthorizedReason(header: string | undefined): string {
  if (!header?.trim()) return 'Unauthorized: no API key; send connectionParams { "authorization": "Bearer <key>" }';
  if (!/^Bearer\s+\S+\s*$/i.test(header.trim())) return 'Unauthorized: authorization is not "Bearer <key>"';
  return 'Unauthorized: this API key is not known';
}

export interface LiveOptions {
  server: Server;
  keys: ApiKeys;
  logger: Logger;
  /** Unset: subscriptions answer that live updates are not configured. */
  natsUrl?: string;
  maxPayloadBytes: number;
  /** Runs an operation through the federated API as the caller (authorization included). */
  execute(request: FederatedRequest, caller: Caller): Promise<FederatedResult>;
}

export interface LiveUpdates {
  /** The API schema the gateway loaded; subscriptions are refused until it is set. */
  setApiSchema(apiSchema: GraphQLSchema): void;
  start(): void;
  /** Closes every WebSocket (1001) and the NATS connection. */
  stop(): Promise<void>;
  readonly state: FeedState;
}

const WS_PATHS = new Set(['/graphql', '/']);

/**
 * contract/subscriptions.graphql at /graphql over WebSocket (graphql-ws, "graphql-transport-ws"),
 * authenticated with the API keys in connectionParams.authorization (or the upgrade request's
 * Authorization header). Every event becomes one query through the federated API, run as the
 * subscriber, selecting exactly what the subscriber selected, so payloads carry fields of every
 * subgraph. Queries and mutations sent over the socket run through the federated API too.
 */
export function attachLiveUpdates(options: LiveOptions): LiveUpdates {
  const { logger, keys } = options;
  const feed = new LiveFeed(options.natsUrl, logger);
  const callers = new WeakMap<object, Caller>();
  const streams = new Set<LiveStream>();
  /** One fetch per event, role and query, shared by subscribers that selected the same thing. */
  const inflight = new Map<string, Promise<FederatedResult | Error>>();
  let live: LiveSchema | undefined;

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!WS_PATHS.has(path)) {
      socket.end(`HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\nno WebSocket at ${path}; subscriptions are at /graphql\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  options.server.on('upgrade', onUpgrade);

  function fetchOnce(key: string, request: FederatedRequest, caller: Caller): Promise<FederatedResult | Error> {
    let pending = inflight.get(key);
    if (!pending) {
      pending = options.execute(request, caller).catch((err: Error) => err);
      inflight.set(key, pending);
      void pending.finally(() => inflight.delete(key));
    }
    return pending;
  }

  /** The payload for one event, or undefined when the entity is gone (or the event cannot be fetched). */
  async function payloadFor(prepared: Prepared, event: LiveEvent, id: string, overrides: Record<string, unknown>): Promise<FederatedResult | undefined> {
    const { entity, caller } = prepared;
    const variables = { ...prepared.variables, [entity.idVariable]: id };
    const key = `${event.id}\n${caller.role}\n${entity.query}\n${JSON.stringify(variables)}`;
    const result = await fetchOnce(key, { query: entity.query, variables }, caller);
    if (result instanceof Error) {
      logger.warn({ event: event.subject, err: result.message }, 'could not fetch a live update');
      return undefined;
    }
    const value = result.data?.[entity.responseKey];
    if (value == null) {
      if (!result.errors?.length) return undefined; // gone since the event
      return { data: null, errors: result.errors };
    }
    const shown = { ...(value as Record<string, unknown>) };
    for (const [field, newValue] of Object.entries(overrides)) {
      for (const k of prepared.overrideKeys.get(field) ?? []) if (k in shown) shown[k] = newValue;
    }
    return { data: { [entity.responseKey]: shown }, ...(result.errors?.length ? { errors: result.errors } : {}) };
  }

  function subscribe(prepared: Prepared): LiveStream {
    let unlisten = () => {};
    const stream = new LiveStream(logger, () => {
      unlisten();
      streams.delete(stream);
    });
    streams.add(stream);
    unlisten = feed.on(prepared.spec.topic, (event) => {
      const accepted = prepared.spec.accept(event, prepared.args);
      if (accepted) stream.push(payloadFor(prepared, event, accepted.id, accepted.overrides));
    });
    return stream;
  }

  /** Checks a subscription and works out what each event fetches; errors are refused before it starts. */
  function prepare(
    caller: Caller,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    rawVariables: Record<string, unknown>,
  ): Prepared | readonly GraphQLError[] {
    const fragments = fragmentsOf(document);
    const schema = live!.schema;
    for (const name of rootFieldsOf(operation, fragments)) {
      const why = live!.unavailable.get(name);
      if (why) return [error(why, 'SERVICE_UNAVAILABLE', { field: name })];
    }
    const invalid = g.validate(schema, document);
    if (invalid.length) return invalid;
    const field = rootField(operation, fragments)!;
    const name = field.name.value;
    const denied = authorize(caller, 'subscription', [name]);
    if (denied) return [error(denied, 'FORBIDDEN')];
    if (feed.state !== 'ok') {
      return [
        error(
          feed.state === 'off'
            ? 'Live updates are not configured on this gateway (it has no NATS_URL); queries and mutations work.'
            : 'Live updates are unavailable right now: the gateway cannot reach NATS. Queries and mutations still work; subscribe again shortly.',
          'SERVICE_UNAVAILABLE',
        ),
      ];
    }
    const coerced = g.getVariableValues(schema, operation.variableDefinitions ?? [], rawVariables);
    if (coerced.errors) return coerced.errors;
    const spec = LIVE_FIELDS[name]!;
    const fieldDef = schema.getSubscriptionType()!.getFields()[name]!;
    const args = g.getArgumentValues(fieldDef, field, coerced.coerced);
    const entity = buildEntityQuery(document, operation, field, spec.entity.field);
    const overrideKeys = new Map(['status', 'assignee'].map((f) => [f, responseKeysOf(field.selectionSet, fragments, spec.entity.type, f)]));
    const variables = Object.fromEntries(entity.variables.filter((v) => v in rawVariables).map((v) => [v, rawVariables[v]]));
    return { caller, spec, args, entity, variables, overrideKeys };
  }

  useServer(
    {
      onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const given = params.authorization ?? params.Authorization ?? ctx.extra.request.headers.authorization;
        const header = typeof given === 'string' ? given : undefined;
        const auth = authenticate(keys, header);
        if (!auth.ok) {
          // 4401 rather than graphql-ws's 4403 for a refused init: the key is missing or wrong.
          ctx.extra.socket.close(4401, unauthorizedReason(header));
          return false;
        }
        callers.set(ctx, auth.caller);
        return { role: auth.caller.role };
      },
      onSubscribe(ctx: Context, _id, payload) {
        const caller = callers.get(ctx)!;
        if (!live) return [error('The gateway is still starting; subscribe again in a moment.', 'SERVICE_UNAVAILABLE')];
        let document: DocumentNode;
        try {
          document = g.parse(payload.query);
        } catch (err) {
          return [err instanceof g.GraphQLError ? err : error((err as Error).message, 'GRAPHQL_PARSE_FAILED')];
        }
        const operation = g.getOperationAST(document, payload.operationName);
        if (!operation) return [error('Send exactly one operation, or name the one to run in operationName.', 'BAD_REQUEST')];
        const request: FederatedRequest = {
          query: payload.query,
          ...(payload.variables ? { variables: payload.variables } : {}),
          ...(payload.operationName ? { operationName: payload.operationName } : {}),
        };
        const context: LiveContext = { caller, request };
        if (operation.operation === 'subscription') {
          const prepared = prepare(caller, document, operation, payload.variables ?? {});
          if (!('spec' in prepared)) return prepared;
          context.prepared = prepared;
          logger.debug({ entity: prepared.spec.entity.field, role: caller.role }, 'subscription started');
        }
        return {
          schema: live.schema,
          document,
          ...(payload.operationName ? { operationName: payload.operationName } : {}),
          variableValues: payload.variables ?? {},
          contextValue: context,
        } as ExecutionArgs;
      },
      // Queries and mutations over the socket go through the federated API, as over HTTP.
      execute: (args) => {
        const { request, caller } = args.contextValue as LiveContext;
        return options.execute(request, caller) as unknown as Promise<ExecutionResult>;
      },
      subscribe: (args) => subscribe((args.contextValue as LiveContext).prepared!),
      // Results are already formatted by the federated execution; send them as they are.
      onNext: (_ctx, _id, _payload, _args, result) => result as unknown as FormattedExecutionResult,
    },
    wss,
  );

  return {
    setApiSchema(apiSchema) {
      try {
        live = buildLiveSchema(apiSchema);
        for (const [field, why] of live.unavailable) logger.info({ field }, why);
      } catch (err) {
        // Queries and mutations do not depend on this; subscriptions say the gateway is starting.
        logger.error({ err: (err as Error).message }, 'could not add the subscriptions to the API schema');
      }
    },
    start() {
      feed.start();
    },
    async stop() {
      options.server.off('upgrade', onUpgrade);
      for (const stream of [...streams]) stream.close();
      // Clients get a close frame (1001); those that do not answer it within a second are cut off.
      const closed = [...wss.clients].map((ws) => new Promise((resolve) => ws.once('close', resolve)));
      for (const ws of wss.clients) ws.close(1001, 'The gateway is shutting down');
      await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await feed.stop();
    },
    get state() {
      return feed.state;
    },
  };
}
