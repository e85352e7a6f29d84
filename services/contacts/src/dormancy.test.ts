import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@textloop/service-kit';
import { waitFor } from '@textloop/service-kit/testing';
import { parseSweepInterval, parseThresholds } from './dormancy';
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
