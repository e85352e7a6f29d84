import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { INTERNAL_TOKEN_HEADER, KEY_NAME_HEADER, ROLE_HEADER, listenerFor, readBody, sendJson, type HttpService } from '@textloop/service-kit';
import { authenticate, authorize, fragmentsOf, rootFieldsOf, type ApiKeys, type Caller } from './auth';
import { attachLiveUpdates, type FederatedResult } from './live';

export interface GatewayOptions {
  /** The composed supergraph (supergraph.graphql). */
  supergraphSdl: string;
  /** Subgraph name → GraphQL URL; a subgraph not listed keeps the URL composed into the supergraph. */
  subgraphUrls: Record<string, string>;
  /** Sent to every subgraph, which answer nobody else. */
  internalToken: string;
  keys: ApiKeys;
  logger: Logger;
  maxBodyBytes?: number;
  /** NATS, for the live updates (subscriptions); unset, subscriptions answer that they are not configured. */
  natsUrl?: string;
}

export interface GatewayInstance {
  http: HttpService;
  /** Loads the supergraph; /healthz answers 200 afterwards. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, apollo-require-preflight, x-apollo-operation-name',
  'access-control-max-age': '86400',
};

/** Sends the caller's role and key name, and the token that proves the request comes from us. */
class SubgraphSource extends RemoteGraphQLDataSource<Caller> {
  constructor(
    private readonly name: string,
    url: string,
    private readonly internalToken: string,
    private readonly logger: Logger,
  ) {
    // Node's fetch (undici) keeps connections to each subgraph alive and pooled.
    super({ url, fetcher: fetch });
  }

  override willSendRequest({ request, context }: Parameters<NonNullable<RemoteGraphQLDataSource<Caller>['willSendRequest']>>[0]): void {
    const headers = request.http!.headers;
    headers.set(INTERNAL_TOKEN_HEADER, this.internalToken);
    if (context?.role) headers.set(ROLE_HEADER, context.role);
    if (context?.keyName) headers.set(KEY_NAME_HEADER, context.keyName);
  }

  /** Says which service failed, in words a client can act on; the details go to the log. */
  override didEncounterError(error: Error, _request: unknown, response?: { status: number }): never {
    if (!response) {
      this.logger.warn({ subgraph: this.name, url: this.url, err: (error.cause as Error | undefined)?.message ?? error.message }, 'subgraph not reachable');
      throw new GraphQLError(`The ${this.name} service is not reachable right now; try again shortly.`, {
        extensions: { code: 'SERVICE_UNAVAILABLE', service: this.name },
      });
    }
    if (response.status === 403) {
      this.logger.error(
        { subgraph: this.name, url: this.url },
        'subgraph refused the internal token; start it with the same DATA_DIR or INTERNAL_TOKEN as the gateway',
      );
      throw new GraphQLError(`The gateway is not configured to reach the ${this.name} service; the details are in the gateway log.`, {
        extensions: { code: 'INTERNAL_SERVER_ERROR', service: this.name },
      });
    }
    throw error;
  }
}

/** Role checks run once the operation is known, before anything reaches a subgraph. */
const authorizationPlugin: ApolloServerPlugin<Caller> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ contextValue, operation, document }) {
        if (!operation) return;
        const denied = authorize(contextValue, operation.operation, rootFieldsOf(operation, fragmentsOf(document)));
        if (denied) throw new GraphQLError(denied, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
      },
    };
  },
};

/**
 * Errors keep their subgraph's extensions.code (BAD_USER_INPUT, NOT_FOUND, …) and message;
 * stack traces and the subgraph's raw HTTP response stay out of the answer.
 */
function formatError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const { stacktrace: _stacktrace, exception: _exception, response: _response, ...extensions } = (formatted.extensions ?? {}) as Record<string, unknown>;
  return { ...formatted, extensions };
}

function wantsHtml(req: IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

function headerMap(req: IncomingMessage): HeaderMap {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

/**
 * The public front door: API-key authentication, the federated GraphQL API at /graphql (and at /,
 * where browsers get the Sandbox), /healthz, and CORS for browser clients.
 */
export function createGateway(options: GatewayOptions): GatewayInstance {
  const { logger, keys } = options;
  const limit = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const gateway = new ApolloGateway({
    supergraphSdl: options.supergraphSdl,
    logger,
    buildService: ({ name, url }) => new SubgraphSource(name, options.subgraphUrls[name] ?? url!, options.internalToken, logger),
  });
  const apollo = new ApolloServer<Caller>({
    gateway,
    logger,
    allowBatchedHttpRequests: true,
    includeStacktraceInErrorResponses: false,
    stopOnTerminationSignals: false,
    formatError,
    plugins: [
      authorizationPlugin,
      ApolloServerPluginLandingPageLocalDefault({
        footer: false,
        embed: {
          runTelemetry: false,
          initialState: { sharedHeaders: keys.devKey ? { Authorization: `Bearer ${keys.devKey}` } : {} },
        },
      }),
    ],
  });
  let started = false;

  async function execute(req: IncomingMessage, res: ServerResponse, request: HTTPGraphQLRequest, caller: Caller | undefined) {
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: request,
      // Only the landing page is served without a caller, and it runs no operation.
      context: async () => caller ?? { role: 'viewer', keyName: 'anonymous' },
    });
    for (const [k, v] of result.headers) res.setHeader(k, v);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') return res.end(result.body.string);
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  }

  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === '/healthz')
        return sendJson(res, started ? 200 : 503, { status: started ? 'ok' : 'starting', liveUpdates: live.state, pid: process.pid });
      if (url.pathname !== '/graphql' && url.pathname !== '/')
        return sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}; the API is at /graphql` });
      for (const [k, v] of Object.entries(CORS_HEADERS)) res.setHeader(k, v);
      if (req.method === 'OPTIONS') {
        res.statusCode = 204;
        return res.end();
      }
      const headers = headerMap(req);
      if (wantsHtml(req)) {
        // The Sandbox page; without the query string no operation can run unauthenticated.
        return await execute(req, res, { method: 'GET', headers, search: '', body: undefined }, undefined);
      }
      if (url.pathname === '/' && req.method === 'GET' && !url.search) {
        return sendJson(res, 200, {
          message: 'Textloop GraphQL API: POST to /graphql with the header Authorization: Bearer <key>; open this address in a browser for the Sandbox.',
        });
      }
      const auth = authenticate(keys, req.headers.authorization);
      if (!auth.ok) {
        res.setHeader('www-authenticate', 'Bearer');
        return sendJson(res, 401, { errors: [auth.error] });
      }
      let body: unknown;
      if (req.method === 'POST') {
        const raw = (await readBody(req, limit)).toString('utf8');
        try {
          body = (headers.get('content-type') ?? '').includes('json') ? JSON.parse(raw) : raw;
        } catch {
          return sendJson(res, 400, { errors: [{ message: 'The request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
        }
      }
      await execute(req, res, { method: req.method ?? 'GET', headers, search: url.search, body }, auth.caller);
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) logger.error({ err: (err as Error).message, path: url.pathname }, 'request failed');
      if (!res.headersSent)
        sendJson(res, status, {
          errors: [
            {
              message: status >= 500 ? 'Internal server error; the details are in the gateway log.' : (err as Error).message,
              extensions: { code: status === 413 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR' },
            },
          ],
        });
      else res.end();
    }
  });
  server.keepAliveTimeout = 65_000;

  const live = attachLiveUpdates({
    server,
    keys,
    logger,
    natsUrl: options.natsUrl,
    maxPayloadBytes: limit,
    async execute(request, caller): Promise<FederatedResult> {
      const response = await apollo.executeOperation(request, { contextValue: caller });
      if (response.body.kind === 'single') return response.body.singleResult as FederatedResult;
      return { errors: [{ message: '@defer and @stream are not supported over WebSocket.', extensions: { code: 'BAD_REQUEST' } }] };
    },
  });
  gateway.onSchemaLoadOrUpdate(({ apiSchema }) => live.setApiSchema(apiSchema));
  const listener = listenerFor(server);
  let liveStopped: Promise<void> | undefined;
  const stopLive = () => (liveStopped ??= live.stop());

  return {
    http: {
      server,
      listen: listener.listen,
      // WebSockets first: an open socket would keep the server from closing.
      close: async () => {
        await stopLive();
        await listener.close();
      },
    },
    async start() {
      await apollo.start();
      live.start();
      started = true;
    },
    async stop() {
      started = false;
      await stopLive();
      await apollo.stop();
    },
  };
}
