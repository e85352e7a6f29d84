import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDeps, ManualClock, silentLogger, type ServiceInstance } from '@textloop/service-kit';
import { startTestNats, type TestNats } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { createServer } from './server';

/** Without DATABASE_URL the platform runs on embedded PGlite: the same SQL must work there. */
describe('on embedded PGlite', () => {
  let nats: TestNats;
  let dir: string;
  let deps: Awaited<ReturnType<typeof buildDeps<Database>>>;
  let instance: ServiceInstance;
  let url: string;
  const clock = new ManualClock('2026-11-27T10:00:00.000Z');
  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
  };

  beforeAll(async () => {
    nats = await startTestNats();
    dir = mkdtempSync(join(tmpdir(), 'tl-contacts-pglite-'));
    deps = await buildDeps<Database>({
      name: 'contacts',
      migrations,
      streams: ['CONTACTS', 'EVENTS'],
      target: { kind: 'pglite', dir },
      natsUrl: nats.url,
      logger: silentLogger,
      clock,
      env: { DORMANCY_SWEEP_INTERVAL_MS: '0' },
    });
    instance = createServer(deps);
    ({ url } = await instance.http.listen(0));
    await instance.start();
  });
  afterAll(async () => {
    await instance?.http.close();
    await instance?.stop();
    await deps?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates, imports, updates, filters, tracks and sweeps', async () => {
    const created = await gql(
      'mutation { createContact(input: { phone: "+14155550100", tags: ["vip"], attributes: { plan: "pro", list: [1, 2] } }) { id tags attributes } }',
    );
    expect(created.errors).toBeUndefined();
    expect(created.data.createContact).toMatchObject({ tags: ['vip'], attributes: { plan: 'pro', list: [1, 2] } });
    const id = created.data.createContact.id;

    const imported = await gql('mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created updated failed { index } } }', {
      c: [{ phone: '+14155550100', tags: ['vip', 'b'] }, { phone: '+14155550101', attributes: { a: [1] } }, { phone: 'nope' }],
    });
    expect(imported.data.importContacts).toEqual({ created: 1, updated: 1, failed: [{ index: 2 }] });

    const updated = await gql('mutation($id: ID!) { updateContact(id: $id, input: { attributes: { plan: null } }) { attributes tags } }', { id });
    expect(updated.data.updateContact).toEqual({ attributes: { list: [1, 2] }, tags: ['vip', 'b'] });

    const tagged = await gql('{ contacts(filter: { tag: "b", search: "555" }) { totalCount nodes { id } } }');
    expect(tagged.data.contacts).toEqual({ totalCount: 1, nodes: [{ id }] });

    const tracked = await gql('mutation { trackEvent(input: { phone: "+14155550102", name: "user.signed_up", idempotencyKey: "k" }) { duplicate } }');
    expect(tracked.data.trackEvent.duplicate).toBe(false);
    clock.advance(31 * 24 * 3600 * 1000);
    const swept = await gql('mutation { runDormancySweep }');
    expect(swept.data.runDormancySweep).toBe(3);
  });
});
