import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTACT_FIELDS, startHarness, type Harness } from './test-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('contacts');
});
afterAll(async () => {
  await h?.stop();
});

const CREATE = `mutation($input: CreateContactInput!) { createContact(input: $input) { ${CONTACT_FIELDS} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateContactInput!) { updateContact(id: $id, input: $input) { ${CONTACT_FIELDS} } }`;

async function create(input: Record<string, unknown>) {
  const res = await h.gql(CREATE, { input });
  expect(res.errors).toBeUndefined();
  return res.data.createContact;
}

/** Runs a failing call and checks it wrote nothing: no rows, no events. */
async function expectNothingWritten<T>(call: () => Promise<T>): Promise<T> {
  await h.settle();
  const before = {
    contacts: await h.count('contacts'),
    ledger: await h.count('consent_ledger'),
    events: await h.count('tracked_events'),
    published: h.deps.outbox.published,
  };
  const result = await call();
  expect(await h.count('outbox')).toBe(0);
  expect({
    contacts: await h.count('contacts'),
    ledger: await h.count('consent_ledger'),
    events: await h.count('tracked_events'),
    published: h.deps.outbox.published,
  }).toEqual(before);
  return result;
}

describe('createContact', () => {
  it('normalises a national number with defaultCountry and derives country and timezone', async () => {
    const c = await create({ phone: '(415) 555-0100', defaultCountry: 'us', firstName: ' Ada ', tags: ['vip', 'vip', 'beta'], attributes: { plan: 'pro' } });
    expect(c).toMatchObject({
      phone: '+14155550100',
      country: 'US',
      timezone: 'America/Los_Angeles',
      firstName: 'Ada',
      tags: ['vip', 'beta'],
      attributes: { plan: 'pro' },
      subscribed: true,
      phoneVerified: false,
      lastActiveAt: null,
      createdAt: '2026-11-27T10:00:00.000Z',
    });
    const [created] = await h.recorder.waitFor('contacts.contact.created', (e) => e.event.data.contactId === c.id);
    expect(created!.event).toMatchObject({
      specversion: '1.0',
      source: 'textloop/contacts',
      type: 'contacts.contact.created',
      datacontenttype: 'application/json',
    });
    expect(created!.msgId).toBe(created!.event.id);
    expect(created!.event.data).toMatchObject({
      contactId: c.id,
      phone: '+14155550100',
      country: 'US',
      timezone: 'America/Los_Angeles',
      tags: ['vip', 'beta'],
      attributes: { plan: 'pro' },
      subscribed: true,
    });
  });

  it('keeps a given timezone, and falls back to the number when none is given', async () => {
    const c = await create({ phone: '+44 20 7946 0958', timezone: 'europe/paris', email: 'grace@example.com', locale: 'en-gb' });
    expect(c).toMatchObject({ phone: '+442079460958', country: 'GB', timezone: 'Europe/Paris', email: 'grace@example.com', locale: 'en-GB' });
    const d = await create({ phone: '+442079460959' });
    expect(d.timezone).toBe('Europe/London');
  });

  it.each([
    ['a national number without defaultCountry', { phone: '(415) 555-0101' }, 'phone', /defaultCountry/],
    ['a bad phone', { phone: '+1 555 12' }, 'phone', /Invalid phone number/],
    ['a phone with letters', { phone: '1-800-FLOWERS' }, 'phone', /letters/],
    ['a bad timezone', { phone: '+14155550102', timezone: 'Mars/Olympus' }, 'timezone', /IANA time zone/],
    ['an offset as timezone', { phone: '+14155550102', timezone: '+02:00' }, 'timezone', /IANA time zone/],
    ['attributes as an array', { phone: '+14155550102', attributes: [1, 2] }, 'attributes', /JSON object/],
    ['attributes as a scalar', { phone: '+14155550102', attributes: 'pro' }, 'attributes', /JSON object/],
    ['a bad email', { phone: '+14155550102', email: 'not-an-email' }, 'email', /email address/],
    ['an empty tag', { phone: '+14155550102', tags: [' '] }, 'tags', /empty tag/],
  ])('rejects %s with BAD_USER_INPUT on the field, writing nothing', async (_what, input, field, message) => {
    const res = await expectNothingWritten(() => h.gql(CREATE, { input }));
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors?.[0]?.message).toMatch(message);
  });

  it('refuses a duplicate phone or externalId with CONFLICT naming the existing contact', async () => {
    const first = await create({ phone: '+14155550110', externalId: 'user-110' });
    const samePhone = await expectNothingWritten(() => h.gql(CREATE, { input: { phone: '415 555 0110', defaultCountry: 'US' } }));
    expect(samePhone.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'phone' });
    expect(samePhone.errors?.[0]?.message).toContain(first.id);
    const sameExternal = await expectNothingWritten(() => h.gql(CREATE, { input: { phone: '+14155550111', externalId: 'user-110' } }));
    expect(sameExternal.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'externalId' });
    expect(sameExternal.errors?.[0]?.message).toContain(first.id);
  });
});

describe('reading contacts', () => {
  it('finds a contact by id, phone and externalId, and resolves it as a federation entity', async () => {
    const c = await create({ phone: '+14155550120', externalId: 'user-120' });
    const res = await h.gql(
      `query($id: ID!) {
        contact(id: $id) { id phone }
        contactByPhone(phone: "+1 (415) 555-0120") { id }
        contactByExternalId(externalId: "user-120") { id }
        missing: contact(id: "nope") { id }
        _entities(representations: [{ __typename: "Contact", id: $id }, { __typename: "Contact", id: "nope" }]) { ... on Contact { id phone } }
      }`,
      { id: c.id },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      contact: { id: c.id, phone: '+14155550120' },
      contactByPhone: { id: c.id },
      contactByExternalId: { id: c.id },
      missing: null,
      _entities: [{ id: c.id, phone: '+14155550120' }, null],
    });
  });

  it('composes: the SDL declares Contact as an entity with the contract fields', async () => {
    const res = await h.gql('{ _service { sdl } }');
    const sdl: string = res.data._service.sdl;
    expect(sdl).toMatch(/type Contact\s+@key\(fields: "id"\)/);
    expect(sdl).toMatch(/type PageInfo\s+@shareable/);
    expect(sdl).toContain('contacts(filter: ContactFilter, first: Int = 50, after: String): ContactConnection!');
  });
});

describe('updateContact', () => {
  it('merges attributes, removes keys set to null, replaces tags, and publishes the new snapshot', async () => {
    const c = await create({ phone: '+14155550130', attributes: { plan: 'pro', seats: 3, referrer: 'x' }, tags: ['a', 'b'] });
    h.clock.advance(60_000);
    const res = await h.gql(UPDATE, { id: c.id, input: { attributes: { seats: 5, referrer: null, city: 'Oslo' }, tags: ['c'], lastName: 'Lovelace' } });
    expect(res.errors).toBeUndefined();
    expect(res.data.updateContact).toMatchObject({
      attributes: { plan: 'pro', seats: 5, city: 'Oslo' },
      tags: ['c'],
      lastName: 'Lovelace',
      updatedAt: '2026-11-27T10:01:00.000Z',
    });
    expect(res.data.updateContact.attributes).not.toHaveProperty('referrer');
    const [updated] = await h.recorder.waitFor('contacts.contact.updated', (e) => e.event.data.contactId === c.id);
    expect(updated!.event.data).toMatchObject({ attributes: { plan: 'pro', seats: 5, city: 'Oslo' }, tags: ['c'], lastName: 'Lovelace' });
  });

  it('clears a field set to null and re-derives a cleared timezone', async () => {
    const c = await create({ phone: '+14155550131', firstName: 'Ada', timezone: 'Asia/Tokyo' });
    const res = await h.gql(UPDATE, { id: c.id, input: { firstName: null, timezone: null } });
    expect(res.data.updateContact).toMatchObject({ firstName: null, timezone: 'America/Los_Angeles' });
  });

  it('publishes nothing when nothing changes', async () => {
    const c = await create({ phone: '+14155550132', firstName: 'Ada' });
    await h.settle();
    const res = await expectNothingWritten(() => h.gql(UPDATE, { id: c.id, input: { firstName: 'Ada' } }));
    expect(res.data.updateContact.firstName).toBe('Ada');
  });

  it('answers NOT_FOUND for an unknown id and BAD_USER_INPUT for bad values, writing nothing', async () => {
    const missing = await expectNothingWritten(() => h.gql(UPDATE, { id: 'no-such-contact', input: { firstName: 'x' } }));
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const c = await create({ phone: '+14155550133' });
    const bad = await expectNothingWritten(() => h.gql(UPDATE, { id: c.id, input: { attributes: ['x'] } }));
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'attributes' });
    const badZone = await expectNothingWritten(() => h.gql(UPDATE, { id: c.id, input: { timezone: 'Nowhere/Special' } }));
    expect(badZone.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'timezone' });
  });
});

describe('contacts()', () => {
  it('filters by tag, subscribed, country, inactivity and search, and pages with cursors', async () => {
    // A separate time window and tag keep this test independent of contacts created above.
    h.clock.set('2026-12-01T00:00:00.000Z');
    const made = [];
    for (let i = 0; i < 7; i++) {
      made.push(
        await create({
          phone: `+1415555020${i}`,
          firstName: `Pager${i}`,
          lastName: i % 2 ? 'Odd' : 'Even',
          email: `p${i}@example.org`,
          tags: ['paging', ...(i % 2 ? ['odd'] : [])],
        }),
      );
      h.clock.advance(1000);
    }
    const gb = await create({ phone: '+447400123456', firstName: 'Brit', tags: ['paging'] });
    await h.gql('mutation($id: ID!) { unsubscribeContact(id: $id) { id } }', { id: made[0].id });

    const LIST = `query($filter: ContactFilter, $first: Int, $after: String) {
      contacts(filter: $filter, first: $first, after: $after) { nodes { id firstName } pageInfo { hasNextPage endCursor } totalCount } }`;
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res: any = await h.gql(LIST, { filter: { tag: 'paging' }, first: 3, after });
      expect(res.errors).toBeUndefined();
      expect(res.data.contacts.totalCount).toBe(8);
      seen.push(...res.data.contacts.nodes.map((n: { id: string }) => n.id));
      pages++;
      if (!res.data.contacts.pageInfo.hasNextPage) break;
      after = res.data.contacts.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...made.map((m) => m.id), gb.id]);

    const count = async (filter: Record<string, unknown>) => (await h.gql(LIST, { filter: { tag: 'paging', ...filter } })).data.contacts.totalCount;
    expect(await count({ tag: 'odd' })).toBe(3);
    expect(await count({ subscribed: false })).toBe(1);
    expect(await count({ subscribed: true })).toBe(7);
    expect(await count({ country: 'gb' })).toBe(1);
    expect(await count({ search: 'pager3' })).toBe(1);
    expect(await count({ search: 'pager3 odd' })).toBe(1);
    expect(await count({ search: 'P5@EXAMPLE' })).toBe(1);
    expect(await count({ search: '(415) 555-0204' })).toBe(1);
    expect(await count({ search: '%' })).toBe(0);

    h.clock.set('2026-12-10T23:59:59.000Z');
    expect(await count({ inactiveForDays: 10 })).toBe(0);
    await h.gql('mutation { trackEvent(input: { phone: "+14155550203", name: "app.opened" }) { id } }');
    h.clock.set('2026-12-11T00:00:08.000Z');
    expect(await count({ inactiveForDays: 10 })).toBe(7);

    const badCursor = await h.gql(LIST, { after: 'garbage' });
    expect(badCursor.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    const badFirst = await h.gql(LIST, { first: -1 });
    expect(badFirst.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });
});

describe('consent', () => {
  it('unsubscribes and resubscribes once each, with ledger rows and events on NATS', async () => {
    const c = await create({ phone: '+14155550300' });
    const UNSUB = `mutation($id: ID!) { unsubscribeContact(id: $id) { subscribed unsubscribedAt } }`;
    const RESUB = `mutation($id: ID!) { resubscribeContact(id: $id) { subscribed unsubscribedAt consentHistory { subscribed reason source at } } }`;
    h.clock.set('2026-12-20T08:00:00.000Z');
    expect((await h.gql(UNSUB, { id: c.id })).data.unsubscribeContact).toEqual({ subscribed: false, unsubscribedAt: '2026-12-20T08:00:00.000Z' });
    const again = await expectNothingWritten(() => h.gql(UNSUB, { id: c.id }));
    expect(again.data.unsubscribeContact.subscribed).toBe(false);

    h.clock.set('2026-12-21T08:00:00.000Z');
    const back = await h.gql(RESUB, { id: c.id });
    expect(back.data.resubscribeContact).toMatchObject({ subscribed: true, unsubscribedAt: null });
    expect(back.data.resubscribeContact.consentHistory).toEqual([
      { subscribed: true, reason: 'CREATED', source: 'graphql', at: expect.any(String) },
      { subscribed: false, reason: 'API', source: 'graphql', at: '2026-12-20T08:00:00.000Z' },
      { subscribed: true, reason: 'API', source: 'graphql', at: '2026-12-21T08:00:00.000Z' },
    ]);
    await expectNothingWritten(() => h.gql(RESUB, { id: c.id }));

    const [unsub] = await h.recorder.waitFor('contacts.contact.unsubscribed', (e) => e.event.data.contactId === c.id);
    const [resub] = await h.recorder.waitFor('contacts.contact.resubscribed', (e) => e.event.data.contactId === c.id);
    expect(unsub!.event).toMatchObject({
      specversion: '1.0',
      type: 'contacts.contact.unsubscribed',
      source: 'textloop/contacts',
      time: '2026-12-20T08:00:00.000Z',
      data: { contactId: c.id, phone: '+14155550300', reason: 'API' },
    });
    expect(unsub!.msgId).toBe(unsub!.event.id);
    expect(unsub!.headers?.get('content-type')).toBe('application/cloudevents+json');
    expect(resub!.event.data).toEqual({ contactId: c.id, phone: '+14155550300', reason: 'API' });
    expect(resub!.msgId).toBe(resub!.event.id);
    expect(h.recorder.forContact(c.id, 'contacts.contact.unsubscribed')).toHaveLength(1);
    expect(h.recorder.forContact(c.id, 'contacts.contact.resubscribed')).toHaveLength(1);
  });

  it('answers NOT_FOUND for an unknown id', async () => {
    const res = await h.gql('mutation { unsubscribeContact(id: "nope") { id } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('deleteContact', () => {
  it('erases the contact with its ledger and events and publishes contacts.contact.deleted', async () => {
    const c = await create({ phone: '+14155550400' });
    await h.gql('mutation($id: ID!) { trackEvent(input: { contactId: $id, name: "order.placed" }) { id } }', { id: c.id });
    const res = await h.gql('mutation($id: ID!) { deleteContact(id: $id) }', { id: c.id });
    expect(res.data).toEqual({ deleteContact: true });
    const [deleted] = await h.recorder.waitFor('contacts.contact.deleted', (e) => e.event.data.contactId === c.id);
    expect(deleted!.event.data).toEqual({ contactId: c.id });
    expect((await h.gql('query($id: ID!) { contact(id: $id) { id } }', { id: c.id })).data.contact).toBeNull();
    const left = await h.deps.db.selectFrom('consent_ledger').select('id').where('contact_id', '=', c.id).execute();
    expect(left).toHaveLength(0);
    const again = await expectNothingWritten(() => h.gql('mutation($id: ID!) { deleteContact(id: $id) }', { id: c.id }));
    expect(again.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('access', () => {
  it('lets viewers read but not write', async () => {
    const res = await h.gql(CREATE, { input: { phone: '+14155550500' } }, { 'x-textloop-role': 'viewer' });
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const read = await h.gql('{ contacts(first: 1) { totalCount } }', undefined, { 'x-textloop-role': 'viewer' });
    expect(read.errors).toBeUndefined();
  });

  it('answers 403 on /graphql without the internal token when one is configured', async () => {
    const { createServer } = await import('./server');
    const guarded = createServer({ ...h.deps, internalToken: 'gateway-secret' });
    const { url } = await guarded.http.listen(0);
    try {
      const post = (headers: Record<string, string>) =>
        fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: '{ contacts { totalCount } }' }),
        });
      const denied = await post({});
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as any).errors[0].extensions.code).toBe('FORBIDDEN');
      const allowed = await post({ 'x-textloop-internal-token': 'gateway-secret' });
      expect(allowed.status).toBe(200);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await guarded.http.close();
      await guarded.stop();
    }
  });
});
