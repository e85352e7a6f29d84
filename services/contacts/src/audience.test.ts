import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callRpc, newId, RpcError, type RpcRequest, type RpcResponse } from '@textloop/events';
import { startHarness, type Harness } from './test-support';

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const DAY = 24 * 3600 * 1000;
const N = 12_000;
const COUNTRIES = ['US', 'GB', 'DE'] as const;

/** The 12,000 contacts, described the way the assertions need them. */
interface Fixture {
  id: string;
  phone: string;
  country: (typeof COUNTRIES)[number];
  tags: string[];
  subscribed: boolean;
  lastActiveAt: Date | null;
  createdAt: Date;
}

function fixture(i: number): Fixture {
  const tags = [i % 5 === 0 ? 'vip' : null, i % 7 === 0 ? 'beta' : null, i % 11 === 0 ? 'press' : null].filter((t): t is string => t !== null);
  const createdAt = new Date(T0 - (i % 150) * DAY - 2 * 3600_000);
  return {
    id: newId(),
    phone: `+1415${String(2_000_000 + i)}`,
    country: COUNTRIES[i % 3]!,
    tags,
    subscribed: i % 13 !== 0,
    // every fourth contact was never active: inactive since it was created
    lastActiveAt: i % 4 === 0 ? null : new Date(T0 - (i % 120) * DAY - 3600_000),
    createdAt,
  };
}

let h: Harness;
const all: Fixture[] = Array.from({ length: N }, (_, i) => fixture(i));

beforeAll(async () => {
  h = await startHarness('contacts_audience');
  for (let i = 0; i < all.length; i += 1000) {
    await h.deps.db
      .insertInto('contacts')
      .values(
        all.slice(i, i + 1000).map((c) => ({
          id: c.id,
          external_id: null,
          phone: c.phone,
          locale: null,
          email: null,
          phone_verified: false,
          country: c.country,
          timezone: 'America/Los_Angeles',
          first_name: `First ${c.phone.slice(-5)}`,
          last_name: null,
          attributes: '{}',
          tags: c.tags,
          subscribed: c.subscribed,
          unsubscribed_at: c.subscribed ? null : new Date(T0),
          last_active_at: c.lastActiveAt,
          created_at: c.createdAt,
          updated_at: c.createdAt,
        })),
      )
      .execute();
  }
});
afterAll(async () => {
  await h?.stop();
});

type Request = RpcRequest<'rpc.contacts.audience'>;
type Page = RpcResponse<'rpc.contacts.audience'>;

/** Pages through the audience to the end; checks the id order and that `next` is the last id. */
async function resolve(request: Request): Promise<{ ids: string[]; pages: Page[] }> {
  const pages: Page[] = [];
  let after: string | null | undefined;
  do {
    const page = await callRpc(h.deps.nats.nc, 'rpc.contacts.audience', { ...request, after });
    pages.push(page);
    if (page.next != null) expect(page.next).toBe(page.contacts[page.contacts.length - 1]!.contactId);
    after = page.next;
    if (pages.length > 1000) throw new Error('paging does not end');
  } while (after);
  const ids = pages.flatMap((p) => p.contacts.map((c) => c.contactId));
  for (let i = 1; i < ids.length; i++) expect(ids[i - 1]! < ids[i]!).toBe(true);
  return { ids, pages };
}

const inactiveFor = (days: number) => (c: Fixture) => (c.lastActiveAt ?? c.createdAt).getTime() <= T0 - days * DAY;
const expected = (...conditions: Array<(c: Fixture) => boolean>) => all.filter((c) => conditions.every((ok) => ok(c))).map((c) => c.id);
const subscribed = (c: Fixture) => c.subscribed;

describe('rpc.contacts.audience', () => {
  it('pages through every subscribed contact in id order, unsubscribed ones left out unless asked for', async () => {
    const { ids, pages } = await resolve({ limit: 5000 });
    expect(ids).toEqual(expected(subscribed));
    expect(ids.length).toBeGreaterThan(11_000);
    expect(pages.map((p) => p.contacts.length)).toEqual([5000, 5000, ids.length - 10_000]);
    expect(pages.at(-1)!.next ?? null).toBeNull();
    expect(pages[0]!.contacts[0]).toEqual({
      contactId: all[1]!.id,
      phone: all[1]!.phone,
      country: 'GB',
      timezone: 'America/Los_Angeles',
      firstName: 'First 00001',
      lastName: null,
      subscribed: true,
    });

    const everyone = await resolve({ subscribedOnly: false, limit: 5000 });
    expect(everyone.ids).toEqual(all.map((c) => c.id));
    expect(everyone.pages).toHaveLength(3);
  });

  it('filters by tags (any of them), inactiveForDays (lastActiveAt, or createdAt when never active) and country', async () => {
    const tagged = await resolve({ tags: ['vip', ' beta '], limit: 1000 });
    expect(tagged.ids).toEqual(expected(subscribed, (c) => c.tags.includes('vip') || c.tags.includes('beta')));
    expect(tagged.pages).toHaveLength(Math.ceil(tagged.ids.length / 1000));

    const inactive = await resolve({ inactiveForDays: 45, limit: 777 });
    expect(inactive.ids).toEqual(expected(subscribed, inactiveFor(45)));
    expect(inactive.ids.length).toBeGreaterThan(5000);
    // the never-active contacts count from their creation
    expect(inactive.ids).toContain(all[60]!.id); // never active, created 60 days ago
    expect(inactive.ids).not.toContain(all[40]!.id); // never active, created 40 days ago

    const gb = await resolve({ country: 'gb' });
    expect(gb.ids).toEqual(expected(subscribed, (c) => c.country === 'GB'));
    expect(gb.pages).toHaveLength(Math.ceil(gb.ids.length / 1000)); // the default limit
  });

  it('combines criteria with AND', async () => {
    const some = await resolve({ tags: ['vip'], inactiveForDays: 30, country: 'US', limit: 100 });
    expect(some.ids).toEqual(
      expected(
        subscribed,
        (c) => c.tags.includes('vip'),
        inactiveFor(30),
        (c) => c.country === 'US',
      ),
    );
    expect(some.ids.length).toBeGreaterThan(100);

    const chosen = all.filter((_, i) => i % 4 === 1).map((c) => c.id);
    const isChosen = new Set(chosen);
    const picked = await resolve({ contactIds: [...chosen, 'no-such-contact', newId()], tags: ['beta'], subscribedOnly: false, limit: 50 });
    expect(picked.ids).toEqual(
      expected(
        (c) => isChosen.has(c.id),
        (c) => c.tags.includes('beta'),
      ),
    );

    const nobody = await resolve({ tags: ['press'], country: 'DE', inactiveForDays: 10_000 });
    expect(nobody.ids).toEqual([]);
    expect(nobody.pages).toEqual([{ contacts: [], next: null }]);
  });

  it('takes up to 10,000 explicit contactIds; empty lists match nobody', async () => {
    const chosen = all.slice(0, 10_000).map((c) => c.id);
    const isChosen = new Set(chosen);
    const { ids, pages } = await resolve({ contactIds: chosen, limit: 5000 });
    expect(ids).toEqual(expected(subscribed, (c) => isChosen.has(c.id)));
    expect(pages).toHaveLength(2);
    expect(await resolve({ contactIds: [] })).toEqual({ ids: [], pages: [{ contacts: [], next: null }] });
    expect(await resolve({ tags: [] })).toEqual({ ids: [], pages: [{ contacts: [], next: null }] });
  });

  it('answers bad requests with an error reply that says what to change', async () => {
    const refused = async (request: Request) => {
      const err = await callRpc(h.deps.nats.nc, 'rpc.contacts.audience', request).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).unavailable).toBe(false);
      return (err as RpcError).message;
    };
    expect(await refused({ inactiveForDays: 0 })).toMatch(/inactiveForDays must be 1 or more/);
    expect(await refused({ inactiveForDays: -3 })).toMatch(/inactiveForDays must be 1 or more/);
    expect(await refused({ inactiveForDays: 1.5 })).toMatch(/whole number of days/);
    expect(await refused({ limit: 5001 })).toMatch(/limit/);
    expect(await refused({ limit: 0 })).toMatch(/limit/);
    expect(await refused({ country: 'USA' })).toMatch(/ISO 3166-1 alpha-2/);
    expect(await refused({ contactIds: Array.from({ length: 10_001 }, (_, i) => `c${i}`) })).toMatch(/contactIds/);
    expect(await refused({ tags: [''] })).toMatch(/tags/);
  });

  it('cuts a page short, with next set, when it would not fit in one NATS message', async () => {
    const long = 'é'.repeat(200); // 400 bytes of UTF-8
    await h.deps.db.updateTable('contacts').set({ first_name: long, last_name: long }).where('country', '=', 'DE').execute();
    const { ids, pages } = await resolve({ country: 'DE', subscribedOnly: false, limit: 5000 });
    expect(ids).toEqual(all.filter((c) => c.country === 'DE').map((c) => c.id));
    expect(pages.length).toBeGreaterThan(1);
    const maxPayload = h.deps.nats.nc.info!.max_payload;
    for (const page of pages) expect(Buffer.byteLength(JSON.stringify({ ok: true, data: page }))).toBeLessThanOrEqual(maxPayload);
    expect(pages[0]!.contacts[0]!.firstName).toBe(long);
  });
});
