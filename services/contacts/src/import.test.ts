import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('contacts_import');
});
afterAll(async () => {
  await h?.stop();
});

const IMPORT = `mutation($contacts: [CreateContactInput!]!) {
  importContacts(contacts: $contacts) { created updated failed { index phone message } } }`;

/** 415-2xx-xxxx numbers, some written nationally with defaultCountry. */
function phoneFor(i: number) {
  const national = String(2_000_000 + i);
  return i % 3 === 0 ? { phone: `(415) ${national.slice(0, 3)}-${national.slice(3)}`, defaultCountry: 'US' } : { phone: `+1415${national}` };
}

function tenThousandRows() {
  const rows: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 10_000; i++) rows.push({ ...phoneFor(i), firstName: `Person ${i}`, tags: ['imported'], attributes: { n: i } });
  for (let i = 7; i < 10_000; i += 1000) rows[i] = { phone: `not a phone ${i}` };
  rows[5] = { phone: '415 555 0100' };
  rows[6] = { ...phoneFor(6), timezone: 'Bad/Zone' };
  rows[8] = { ...phoneFor(8), attributes: [1] };
  // The same phone as row 0: applied after it, so its values win.
  rows[9_999] = { ...phoneFor(0), firstName: 'Last', attributes: { late: true } };
  return rows;
}

describe('importContacts', () => {
  it('imports 10,000 rows: bad rows reported, good rows kept, a second import updates', async () => {
    const rows = tenThousandRows();
    const first = await h.gql(IMPORT, { contacts: rows });
    expect(first.errors).toBeUndefined();
    const result = first.data.importContacts;
    expect(result.failed.map((f: { index: number }) => f.index)).toEqual([5, 6, 7, 8, 1007, 2007, 3007, 4007, 5007, 6007, 7007, 8007, 9007]);
    expect(result.failed[0]).toMatchObject({ index: 5, phone: '415 555 0100', message: expect.stringContaining('defaultCountry') });
    expect(result.failed[1].message).toMatch(/IANA time zone/);
    expect(result.failed[2]).toMatchObject({ index: 7, phone: 'not a phone 7', message: expect.stringMatching(/Invalid phone number/) });
    expect(result.failed[3].message).toMatch(/attributes must be a JSON object/);
    expect(result).toMatchObject({ created: 9_986, updated: 1 });
    expect(await h.count('contacts')).toBe(9_986);
    expect(await h.count('consent_ledger')).toBe(9_986);

    const row0 = await h.gql('{ contactByPhone(phone: "+14152000000") { firstName tags attributes country timezone } }');
    expect(row0.data.contactByPhone).toEqual({
      firstName: 'Last',
      tags: ['imported'],
      attributes: { n: 0, late: true },
      country: 'US',
      timezone: 'America/Los_Angeles',
    });
    const row42 = await h.gql('{ contactByPhone(phone: "+14152000042") { firstName attributes } }');
    expect(row42.data.contactByPhone).toEqual({ firstName: 'Person 42', attributes: { n: 42 } });

    const created = await h.recorder.waitFor('contacts.contact.created', () => true, 9_986, 90_000);
    expect(created).toHaveLength(9_986);
    expect(new Set(created.map((e) => e.event.data.phone)).size).toBe(9_986);

    // Same phones again with a change: everything is an update, nothing is created.
    const again = rows.map((r) => ({ ...r, tags: ['imported', 'again'] }));
    const second = await h.gql(IMPORT, { contacts: again });
    expect(second.errors).toBeUndefined();
    expect(second.data.importContacts).toMatchObject({ created: 0, updated: 9_987 });
    expect(second.data.importContacts.failed).toHaveLength(13);
    expect(await h.count('contacts')).toBe(9_986);
    const updated = await h.recorder.waitFor('contacts.contact.updated', () => true, 9_986, 90_000);
    expect(updated[0]!.event.data.tags).toEqual(['imported', 'again']);

    // Unchanged rows count as updated but publish nothing.
    await h.settle();
    const published = h.deps.outbox.published;
    const third = await h.gql(IMPORT, { contacts: again.slice(1, 100) });
    expect(third.data.importContacts).toMatchObject({ created: 0, updated: 95 });
    await h.settle();
    expect(h.deps.outbox.published).toBe(published);
  }, 240_000);

  it('keeps externalIds unique across the import and the existing contacts', async () => {
    const owner = await h.gql('mutation { createContact(input: { phone: "+14155550900", externalId: "ext-900" }) { id } }');
    const ownerId = owner.data.createContact.id;
    const res = await h.gql(IMPORT, {
      contacts: [
        { phone: '+14155550901', externalId: 'ext-900' },
        { phone: '+14155550900', externalId: 'ext-900', firstName: 'Owner' },
        { phone: '+14155550902', externalId: 'ext-902' },
        { phone: '+14155550903', externalId: 'ext-902' },
      ],
    });
    expect(res.data.importContacts.created).toBe(1);
    expect(res.data.importContacts.updated).toBe(1);
    expect(res.data.importContacts.failed).toEqual([
      { index: 0, phone: '+14155550901', message: expect.stringContaining(ownerId) },
      { index: 3, phone: '+14155550903', message: expect.stringContaining('row 2') },
    ]);
  });

  it('refuses more than 10,000 rows, saying the limit', async () => {
    const rows = Array.from({ length: 10_001 }, (_, i) => phoneFor(i));
    const before = await h.count('contacts');
    const res = await h.gql(IMPORT, { contacts: rows });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'contacts' });
    expect(res.errors?.[0]?.message).toContain('10,000');
    expect(await h.count('contacts')).toBe(before);
  });
});
