import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, type Migration } from 'kysely';
import { startConsumer, type CloudEvent } from '@textloop/events';
import { buildDeps } from './boot';
import { silentLogger } from './logger';
import { enqueueEvents, markProcessed } from './outbox';
import { createTestDatabase, startTestNats, waitFor, type TestNats } from './testing';

const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_widgets': {
    async up(db) {
      await db.schema
        .createTable('widget')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
};

let nats: TestNats;
beforeAll(async () => {
  nats = await startTestNats();
});
afterAll(async () => {
  await nats.stop();
});

/** A contacts-like service on a fresh Postgres database and this file's NATS; dropped afterwards. */
async function withContactsDeps(prefix: string, body: (deps: Awaited<ReturnType<typeof buildDeps<any>>>) => Promise<void>): Promise<void> {
  const database = await createTestDatabase(prefix);
  const deps = await buildDeps<any>({
    name: 'contacts',
    migrations,
    streams: ['CONTACTS'],
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    logger: silentLogger,
  });
  try {
    await body(deps);
  } finally {
    await deps.close();
    await database.drop();
  }
}

describe('outbox relay on real Postgres and NATS', () => {
  it('publishes only committed events, as CloudEvents with Nats-Msg-Id, and consumers dedupe', async () => {
    await withContactsDeps('kit', async (deps) => {
      const seen: CloudEvent[] = [];
      const consumer = await startConsumer({
        js: deps.nats.js,
        jsm: deps.nats.jsm,
        stream: 'CONTACTS',
        durable: 'kit-test',
        filterSubjects: ['contacts.contact.deleted'],
        logger: silentLogger,
        handle: async (event) => {
          if (await markProcessed(deps.db, 'kit-test', event.id)) seen.push(event);
        },
      });
      await deps.db.transaction().execute(async (trx) => {
        await trx.insertInto('widget').values({ id: 'a' }).execute();
        await enqueueEvents(trx, 'textloop/contacts', [{ subject: 'contacts.contact.deleted', data: { contactId: 'a' } }]);
      });
      await deps.db
        .transaction()
        .execute(async (trx) => {
          await enqueueEvents(trx, 'textloop/contacts', [{ subject: 'contacts.contact.deleted', data: { contactId: 'rolled-back' } }]);
          await sql`select 1/0`.execute(trx);
        })
        .catch(() => {});
      deps.outbox.kick();
      await waitFor(() => seen.length >= 1, { what: 'the committed event' });
      // A crash between publish and delete re-publishes the same id; the server drops it.
      const { publishEvent } = await import('@textloop/events');
      await publishEvent(deps.nats.js, 'contacts.contact.deleted', seen[0]!);
      // Garbage is parked, not looped on.
      await deps.nats.js.publish('contacts.contact.deleted', 'not json');
      await waitFor(() => consumer.stats.invalid === 1, { what: 'garbage to be parked' });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ specversion: '1.0', type: 'contacts.contact.deleted', source: 'textloop/contacts', data: { contactId: 'a' } });
      const left = await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(deps.db);
      expect(left.rows[0]!.n).toBe(0);
      await consumer.stop();
    });
  });

  it('keeps data in embedded PGlite across reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tl-pglite-'));
    try {
      const first = await buildDeps<any>({
        name: 'contacts',
        migrations,
        streams: [],
        target: { kind: 'pglite', dir },
        natsUrl: nats.url,
        logger: silentLogger,
      });
      await first.db.insertInto('widget').values({ id: 'kept' }).execute();
      await first.close();
      const second = await buildDeps<any>({
        name: 'contacts',
        migrations,
        streams: [],
        target: { kind: 'pglite', dir },
        natsUrl: nats.url,
        logger: silentLogger,
      });
      const rows = await second.db.selectFrom('widget').selectAll().execute();
      expect(rows).toEqual([{ id: 'kept' }]);
      const count = await sql<{ n: number }>`select count(*) as n from widget`.execute(second.db);
      expect(count.rows[0]!.n).toBe(1);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('an event JetStream can never take', () => {
  it('stays queued without holding back the events behind it', async () => {
    await withContactsDeps('kit_refused', async (deps) => {
      const seen: string[] = [];
      const consumer = await startConsumer({
        js: deps.nats.js,
        jsm: deps.nats.jsm,
        stream: 'CONTACTS',
        durable: 'kit-refused',
        filterSubjects: ['contacts.contact.deleted'],
        logger: silentLogger,
        handle: async (event) => {
          seen.push(event.data.contactId);
        },
      });
      const huge = 'x'.repeat(2 * 1024 * 1024); // beyond NATS's default 1 MB max_payload
      await deps.db.transaction().execute(async (trx) => {
        await enqueueEvents(trx, 'textloop/contacts', [{ subject: 'contacts.contact.deleted', data: { contactId: huge } }]);
        await enqueueEvents(trx, 'textloop/contacts', [{ subject: 'contacts.contact.deleted', data: { contactId: 'after-the-huge-one' } }]);
      });
      deps.outbox.kick();
      await waitFor(() => seen.includes('after-the-huge-one'), { what: 'the event behind the refused one' });
      const left = await sql<{ n: number }>`select count(*)::int as n from outbox`.execute(deps.db);
      expect(left.rows[0]!.n).toBe(1);
      expect(deps.outbox.refused).toBeGreaterThan(0);
      await consumer.stop();
    });
  });
});

describe('a consumer that needs only some events of a busy subject', () => {
  it('acknowledges the ignored ones unread: they never reach the handler and are not counted as invalid', async () => {
    await withContactsDeps('kit_ignore', async (deps) => {
      const seen: string[] = [];
      const consumer = await startConsumer({
        js: deps.nats.js,
        jsm: deps.nats.jsm,
        stream: 'CONTACTS',
        durable: 'kit-ignore',
        filterSubjects: ['contacts.contact.deleted'],
        // Other tests in this file share the stream: only what is published from here on.
        deliver: 'new',
        logger: silentLogger,
        ignore: (_subject, data) => typeof data?.contactId === 'string' && data.contactId.startsWith('bulk-'),
        handle: async (event) => {
          seen.push(event.data.contactId);
        },
      });
      await deps.db.transaction().execute(async (trx) => {
        await enqueueEvents(trx, 'textloop/contacts', [
          { subject: 'contacts.contact.deleted', data: { contactId: 'bulk-1' } },
          { subject: 'contacts.contact.deleted', data: { contactId: 'mine' } },
          { subject: 'contacts.contact.deleted', data: { contactId: 'bulk-2' } },
        ]);
      });
      // Ignored before validation: even a payload the schema would refuse is just acknowledged.
      await deps.nats.js.publish('contacts.contact.deleted', JSON.stringify({ data: { contactId: 'bulk-garbage' } }));
      deps.outbox.kick();
      await waitFor(async () => (await deps.nats.jsm.consumers.info('CONTACTS', 'kit-ignore')).num_ack_pending === 0 && seen.length === 1, {
        what: 'every event acknowledged',
      });
      expect(seen).toEqual(['mine']);
      expect(consumer.stats.invalid).toBe(0);
      expect((await deps.nats.jsm.consumers.info('CONTACTS', 'kit-ignore')).num_pending).toBe(0);
      await consumer.stop();
    });
  });
});
