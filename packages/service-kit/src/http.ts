import { timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap, type BaseContext } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { INTERNAL_TOKEN_HEADER, KEY_NAME_HEADER, ROLE_HEADER } from './secrets';

export type Role = 'admin' | 'app' | 'agent' | 'viewer';

/** What every resolver sees: who is calling, as established by the gateway. */
export interface RequestContext extends BaseContext {
  role: Role;
  keyName?: string;
}

/** url: the request's URL, already parsed for routing. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer, url: URL) => Promise<void> | void;

/**
 * One query parameter, decoded as a form field, without building URLSearchParams for the whole
 * query: webhooks read two short values from callback URLs that can be a kilobyte long.
 */
export function queryParam(search: string, name: string): string | null {
  const key = `${name}=`;
  for (let at = search.indexOf(key); at !== -1; at = search.indexOf(key, at + 1)) {
    if (at !== 0 && search[at - 1] !== '&' && search[at - 1] !== '?') continue;
    const start = at + key.length;
    const end = search.indexOf('&', start);
    const raw = search.slice(start, end === -1 ? undefined : end).replace(/\+/g, ' ');
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

export interface HttpServiceOptions {
  logger: Logger;
  apollo?: ApolloServer<RequestContext>;
  /** Requests to /graphql must carry this token (set by the gateway); others get 403. */
  internalToken?: string;
  /** Extra routes keyed "METHOD /path" (query string ignored), e.g. provider webhooks. */
  routes?: Record<string, RouteHandler>;
  /** 200 when it resolves true; 503 otherwise. */
  health?: () => Promise<boolean> | boolean;
  maxBodyBytes?: number;
}

const KNOWN_CODES = new Set([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** Keeps stack traces and SQL away from clients; logs what was hidden. */
export function formatErrorFor(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && KNOWN_CODES.has(code)) {
      const { stacktrace: _s, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    logger.error(
      { err: error instanceof Error ? { message: error.message, stack: error.stack } : error, path: formatted.path },
      'unexpected error in resolver',
    );
    return { message: 'Internal server error; the details are in the service log.', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error(`request body is larger than ${limit} bytes`), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface HttpService {
  server: Server;
  listen(port: number, host?: string): Promise<{ port: number; url: string }>;
  close(): Promise<void>;
}

/** A small node:http front for a subgraph: /graphql (Apollo), /healthz and a few extra routes. */
export function createHttpService(options: HttpServiceOptions): HttpService {
  const { logger, apollo } = options;
  const limit = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const server = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === '/healthz') {
        const ok = options.health ? await options.health() : true;
        // pid lets a supervisor tell its own child from another process that took the port.
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'starting', pid: process.pid });
      }
      const route = options.routes?.[`${req.method} ${url.pathname}`];
      if (route) {
        const body = await readBody(req, limit);
        return await route(req, res, body, url);
      }
      if (url.pathname === '/graphql' && apollo) {
        if (options.internalToken && !sameSecret(req.headers[INTERNAL_TOKEN_HEADER], options.internalToken)) {
          return sendJson(res, 403, {
            errors: [{ message: 'Subgraphs answer only the Textloop gateway; send your request to the gateway.', extensions: { code: 'FORBIDDEN' } }],
          });
        }
        // Behind the gateway every request names its role; without one, assume the least.
        return await serveGraphql(apollo, req, res, url, limit, options.internalToken ? 'viewer' : 'admin');
      }
      sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      if (status >= 500) logger.error({ err: (err as Error).message, path: url.pathname }, 'request failed');
      if (!res.headersSent) sendJson(res, status, { error: status >= 500 ? 'internal error' : (err as Error).message });
      else res.end();
    }
  });
  server.keepAliveTimeout = 65_000;
  return { server, ...listenerFor(server) };
}

/** listen() and close() for a node:http server, shared by the subgraphs and the gateway. */
export function listenerFor(server: Server): Pick<HttpService, 'listen' | 'close'> {
  return {
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address() as AddressInfo;
          resolve({ port: address.port, url: `http://${host}:${address.port}` });
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Constant-time comparison, so response timing does not reveal how much of a guess was right. */
export function sameSecret(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function serveGraphql(apollo: ApolloServer<RequestContext>, req: IncomingMessage, res: ServerResponse, url: URL, limit: number, defaultRole: Role) {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  let body: unknown = undefined;
  if (req.method === 'POST') {
    const raw = (await readBody(req, limit)).toString('utf8');
    try {
      body = (headers.get('content-type') ?? '').includes('json') ? JSON.parse(raw) : raw;
    } catch {
      return sendJson(res, 400, { errors: [{ message: 'The request body is not valid JSON.', extensions: { code: 'BAD_REQUEST' } }] });
    }
  }
  const role = (headers.get(ROLE_HEADER) as Role | undefined) ?? defaultRole;
  const keyName = headers.get(KEY_NAME_HEADER);
  const result = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
    context: async () => ({ role, keyName }),
  });
  for (const [k, v] of result.headers) res.setHeader(k, v);
  res.statusCode = result.status ?? 200;
  if (result.body.kind === 'complete') {
    res.end(result.body.string);
  } else {
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  }
}
