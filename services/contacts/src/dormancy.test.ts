import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, migrateToLatest, openDatabase } from '@textloop/service-kit';
import { createTestDatabase, waitFor } from '@textloop/service-kit/testing';
import { migrations } from './db/migrations';
import { parseSweepInterval, parseThresholds, runDormancySweep } from './dormancy';
import { createServer } from './server';
import { startHarness, type Harness } from './test-support';

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const DAY = 24 * 3600 * 1000;
const at = (days: number) => new Date(T0 + days * DAY).toISOString();

describe('dormancy settings', () => {
  it('parses thresholds and the interval, refusing nonsense with a message', () => {
    expect(parseThresholds(undefined)).toEqual([30, 60, 90]);
    expect(parseThresholds('90, 30,60,30')).toEqual([30, 60, 90]);
    expect(() => parseThresholds('30,soon')).toThrow(ConfigError);
    expect(() => parseThresholds('0')).toThrow(/above 0/);
    expect(parseSweepInterval(undefined)).toBe(3_600_000);
    expect(parseSweepInterval('0')).toBe(0);
    expect(() => parseSweepInterval('-5')).toThrow(/DORMANCY_SWEEP_INTERVAL_MS/);
  });
});

describe('runDormancySweep', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness('contacts_dormancy');
  });
  afterAll(async () => {
    await h?.stop();
  });

  const sweep = async (days: number) => {
    h.clock.set(at(days));
    const res = await h.gql('mutation { runDormancySweep }');
    expect(res.errors).toBeUndefined();
    return res.data.runDormancySweep as number;
  };
  const create = async (phone: string) => (await h.gql(`mutation { createContact(input: { phone: "${phone}" }) { id } }`)).data.createContact.id as string;
  const track = (id: string) => h.gql('mutation($id: ID!) { trackEvent(input: { contactId: $id, name: "app.opened" }) { id } }', { id });
  const dormant = (id: string) => h.recorder.forContact(id, 'contacts.contact.dormant').map((e) => e.event.data.days as number);

  it('announces each threshold once per inactivity spell', async () => {
    h.clock.set(at(0));
    const a = await create('+14155550700');
    const b = await create('+14155550701');
    h.clock.set(at(20));
    await track(b);

    expect(await sweep(29)).toBe(0);
    expect(await sweep(30)).toBe(1);
    expect(await sweep(30)).toBe(0);
    const [first] = await h.recorder.waitFor('contacts.contact.dormant', (e) => e.event.data.contactId === a);
    expect(first!.event).toMatchObject({ type: 'contacts.contact.dormant', source: 'textloop/contacts', data: { contactId: a, days: 30, lastActiveAt: null } });
    expect(first!.msgId).toBe(first!.event.id);

    expect(await sweep(50)).toBe(1);
    const [bFirst] = await h.recorder.waitFor('contacts.contact.dormant', (e) => e.event.data.contactId === b);
    expect(bFirst!.event.data).toEqual({ contactId: b, days: 30, lastActiveAt: at(20) });
    expect(await sweep(60)).toBe(1);

    // Coming back starts a new spell: the thresholds count again from there.
    h.clock.set(at(61));
    await track(a);
    expect(await sweep(80)).toBe(1); // b: 60
    expect(await sweep(90)).toBe(0);
    expect(await sweep(91)).toBe(1); // a: 30 of the new spell

    // A long gap crosses several thresholds at once: each is announced.
    const c = await create('+14155550702');
    expect(await sweep(187)).toBe(6); // a: 60, 90; b: 90; c: 30, 60, 90
    expect(await sweep(187)).toBe(0);

    await h.settle();
    await waitFor(() => dormant(c).length === 3, { what: 'three dormant events for c' });
    expect(dormant(a)).toEqual([30, 60, 30, 60, 90]);
    expect(dormant(b)).toEqual([30, 60, 90]);
    expect(dormant(c)).toEqual([30, 60, 90]);
  });

  it('also runs on its own every DORMANCY_SWEEP_INTERVAL_MS', async () => {
    h.clock.set(at(200));
    const d = await create('+14155550703');
    h.clock.set(at(231));
    const periodic = createServer({ ...h.deps, env: { DORMANCY_SWEEP_INTERVAL_MS: '50' } });
    await periodic.start();
    try {
      await h.recorder.waitFor('contacts.contact.dormant', (e) => e.event.data.contactId === d);
    } finally {
      await periodic.stop();
    }
    expect(dormant(d)).toEqual([30]);
  });
});

describe('dormancy spells', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness('contacts_dormancy_spells');
  });
  afterAll(async () => {
    await h?.stop();
  });

  const sweep = async (days: number) => {
    h.clock.set(at(days));
    const res = await h.gql('mutation { runDormancySweep }');
    expect(res.errors).toBeUndefined();
    return res.data.runDormancySweep as number;
  };
  const TRACK = 'mutation($input: TrackEventInput!) { trackEvent(input: $input) { contact { id lastActiveAt } } }';
  const track = async (input: Record<string, unknown>) => {
    const res = await h.gql(TRACK, { input: { name: 'app.opened', ...input } });
    expect(res.errors).toBeUndefined();
    return res.data.trackEvent.contact as { id: string; lastActiveAt: string };
  };
  /** The dormant events of a contact the recorder has read so far. */
  const dormant = (id: string) =>
    h.recorder.forContact(id, 'contacts.contact.dormant').map((e) => e.event.data as { contactId: string; days: number; lastActiveAt: string | null });
  /** Waits for the outbox to drain and the recorder to read that many, then compares the thresholds in order. */
  const days = async (id: string, expected: number[]) => {
    await h.settle();
    await waitFor(() => dormant(id).length >= expected.length, { what: `${expected.length} dormant events` });
    expect(dormant(id).map((e) => e.days)).toEqual(expected);
  };

  it('a contact last active 45 days ago is flagged 30 once; at 61 days 60; older activity changes nothing; new activity starts a new spell', async () => {
    h.clock.set(at(0));
    // Created now, with history from the application: it has been inactive for 45 days.
    const x = await track({ phone: '+14155550900', occurredAt: at(-45) });
    expect(x.lastActiveAt).toBe(at(-45));

    expect(await sweep(0)).toBe(1);
    await days(x.id, [30]);
    expect(await sweep(0)).toBe(0);
    expect(await sweep(14)).toBe(0); // 59 days
    expect(await sweep(16)).toBe(1); // 61 days: 60
    await days(x.id, [30, 60]);
    expect(await sweep(16)).toBe(0);

    // An event that occurred before the known activity neither moves lastActiveAt back nor ends the spell.
    expect((await track({ contactId: x.id, occurredAt: at(-50) })).lastActiveAt).toBe(at(-45));
    expect(await sweep(17)).toBe(0);

    // Active again: the spell ends, the thresholds count from this activity.
    expect((await track({ contactId: x.id, occurredAt: at(17) })).lastActiveAt).toBe(at(17));
    expect(await sweep(46)).toBe(0);
    expect(await sweep(47)).toBe(1);
    await days(x.id, [30, 60, 30]);
    expect(dormant(x.id)[2]).toEqual({ contactId: x.id, days: 30, lastActiveAt: at(17) });
  });

  it('a contact first seen 100 days inactive gets every threshold it crossed, in ascending order', async () => {
    h.clock.set(at(47));
    const y = await track({ phone: '+14155550901', occurredAt: at(-53) });
    expect(await sweep(47)).toBe(3);
    await days(y.id, [30, 60, 90]);
    expect(await sweep(47)).toBe(0);
  });

  it('counts a contact never active as inactive since it was created, and flags it even when unsubscribed', async () => {
    h.clock.set(at(50));
    const z = (await h.gql('mutation { createContact(input: { phone: "+14155550902" }) { id } }')).data.createContact.id as string;
    await h.gql('mutation($id: ID!) { unsubscribeContact(id: $id) { id } }', { id: z });
    expect(await sweep(79)).toBe(1); // not z (29 days): x, 62 days into its second spell
    await days(z, []);
    expect(await sweep(80)).toBe(1);
    await days(z, [30]);
    expect(dormant(z)[0]).toEqual({ contactId: z, days: 30, lastActiveAt: null });
  });

  it('publishes contacts.contact.dormant only: scheduling turns it into the contact.dormant automation event', async () => {
    await h.settle();
    expect(h.recorder.of('contacts.contact.dormant').length).toBeGreaterThan(0);
    expect(h.recorder.events.filter((e) => e.subject.startsWith('events.contact.'))).toEqual([]);
  });

  it('contacts(filter: { inactiveForDays }) counts from the same spell start and refuses 0', async () => {
    h.clock.set(at(80));
    const LIST = 'query($days: Int) { contacts(filter: { inactiveForDays: $days }) { totalCount nodes { phone } } }';
    // x active at day 17 (63 days), y at day -53 (133 days), z created at day 50 (30 days).
    const phones = async (days: number) => ((await h.gql(LIST, { days })).data.contacts.nodes as Array<{ phone: string }>).map((n) => n.phone).sort();
    expect(await phones(30)).toEqual(['+14155550900', '+14155550901', '+14155550902']);
    expect(await phones(31)).toEqual(['+14155550900', '+14155550901']);
    expect(await phones(100)).toEqual(['+14155550901']);
    const zero = await h.gql(LIST, { days: 0 });
    expect(zero.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inactiveForDays' });
    expect(zero.errors?.[0]?.message).toMatch(/1 or more/);
  });

  it('in batches and with concurrent sweeps, flags each threshold of each contact exactly once', async () => {
    h.clock.set(at(100));
    const contacts = Array.from({ length: 25 }, (_, i) => ({ phone: `+1415555${String(1000 + i)}` }));
    const imported = await h.gql('mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created } }', { c: contacts });
    expect(imported.data.importContacts.created).toBe(25);
    await h.settle();
    const before = h.recorder.of('contacts.contact.dormant').length;
    h.clock.set(at(195));
    // Due now besides the 25 (95 days: 30, 60, 90): x (178 days into its second spell: 90) and z (145 days: 60, 90).
    const flagged = await Promise.all([
      runDormancySweep(h.deps, [30, 60, 90], { batch: 4 }),
      runDormancySweep(h.deps, [30, 60, 90], { batch: 7 }),
      runDormancySweep(h.deps, [90, 30, 60], { batch: 3 }),
    ]);
    expect(flagged.reduce((a, b) => a + b, 0)).toBe(25 * 3 + 1 + 2);
    await h.settle();
    await waitFor(() => h.recorder.of('contacts.contact.dormant').length >= before + 78, { what: 'every dormant event' });
    const events = h.recorder.of('contacts.contact.dormant').slice(before);
    expect(events).toHaveLength(78);
    const keys = events.map((e) => `${e.event.data.contactId}:${e.event.data.days}`);
    expect(new Set(keys).size).toBe(78);
    for (const e of events) {
      expect(e.event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.msgId).toBe(e.event.id);
      expect(e.event).toMatchObject({ specversion: '1.0', source: 'textloop/contacts', type: 'contacts.contact.dormant', time: at(195) });
    }
    expect(await runDormancySweep(h.deps, [30, 60, 90], { batch: 2 })).toBe(0);
  });
});

describe('the dormancy migration', () => {
  it('keeps the highest threshold already announced as dormant_days', async () => {
    const database = await createTestDatabase('contacts_dormancy_migration');
    const { db, close } = await openDatabase<any>({ kind: 'postgres', url: database.url });
    try {
      const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '2026-11-27T17'));
      await migrateToLatest(db, before);
      const row = (id: string, days: number[]) => ({
        id,
        phone: `+1415555${id}`,
        timezone: 'America/Los_Angeles',
        dormant_notified_days: sql`${days}::integer[]`,
        created_at: new Date(T0),
        updated_at: new Date(T0),
      });
      await db
        .insertInto('contacts')
        .values([row('0001', [30, 60]), row('0002', []), row('0003', [90])])
        .execute();
      await migrateToLatest(db, migrations);
      const rows = await db.selectFrom('contacts').select(['id', 'dormant_days']).orderBy('id').execute();
      expect(rows).toEqual([
        { id: '0001', dormant_days: 60 },
        { id: '0002', dormant_days: 0 },
        { id: '0003', dormant_days: 90 },
      ]);
    } finally {
      await close();
      await database.drop();
    }
  });
});
