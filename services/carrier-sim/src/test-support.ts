// Shared by the test files: a started simulator and a local webhook receiver.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createCarrierSim, type CarrierSim, type CarrierSimOptions } from './server';

export const API_KEY = 'test-key';
export const API_SECRET = 'test-secret';

export interface ReceivedPost {
  path: string;
  form: URLSearchParams;
}

export interface Receiver {
  url: string;
  posts: ReceivedPost[];
  /** Statuses to answer with, consumed one per request; 200 once empty. */
  statuses: number[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const posts: ReceivedPost[] = [];
  const statuses: number[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      if (status >= 200 && status < 300) {
        posts.push({ path: req.url ?? '', form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')) });
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    statuses,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface StartedSim {
  sim: CarrierSim;
  url: string;
  send(fields: Record<string, string>, withCreds?: boolean): Promise<{ status: number; body: any }>;
  json(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export async function startSim(overrides: Partial<CarrierSimOptions> = {}): Promise<StartedSim> {
  const sim = createCarrierSim({
    apiKey: API_KEY,
    apiSecret: API_SECRET,
    logger: pino({ level: 'silent' }),
    defaultDlrDelayMs: 5,
    retryBaseMs: 20,
    ...overrides,
  });
  const { url } = await sim.listen(0, '127.0.0.1');
  return {
    sim,
    url,
    async send(fields, withCreds = true) {
      const form = new URLSearchParams(withCreds ? { 'mocean-api-key': API_KEY, 'mocean-api-secret': API_SECRET } : {});
      for (const [k, v] of Object.entries(fields)) form.set(k, v);
      const res = await fetch(`${url}/rest/2/sms`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      return { status: res.status, body: await res.json() };
    },
    async json(method, path, body) {
      const init: RequestInit = { method };
      if (body !== undefined) {
        init.headers = { 'content-type': 'application/json' };
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const res = await fetch(`${url}${path}`, init);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (the HTML page); keep the text
      }
      return { status: res.status, body: parsed };
    },
  };
}

export async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
