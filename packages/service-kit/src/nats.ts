import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { ensureStream, type StreamName } from '@textloop/events';

export interface Nats {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/** Connects with unlimited reconnects: a NATS restart pauses publishing, it does not kill the service. */
export async function connectNats(url: string, name: string, logger: Logger, streams: StreamName[] = []): Promise<Nats> {
  let nc: NatsConnection;
  try {
    // noAsyncTraces: nats.js otherwise builds an Error (a stack trace) for every request, ~60 µs per publish.
    nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, noAsyncTraces: true });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url} (${(err as Error).message}); start nats-server with JetStream (-js) or set NATS_URL`, { cause: err });
  }
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') logger.warn({ status: s.type }, 'NATS connection changed');
    }
  })().catch(() => {});
  const jsm = await nc.jetstreamManager();
  for (const stream of streams) await ensureStream(jsm, stream);
  return { nc, js: nc.jetstream(), jsm };
}
