import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-support';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('contacts_track');
});
afterAll(async () => {
  await h?.stop();
});

const TRACK = `mutation($input: TrackEventInput!) {
  trackEvent(input: $input) { id name properties occurredAt duplicate contact { id phone lastActiveAt } } }`;

async function contact(input: Record<string, unknown>) {
  const res = await h.gql('mutation($input: CreateContactInput!) { createContact(input: $input) { id phone } }', { input });
  return res.data.createContact as { id: string; phone: string };
}

describe('trackEvent', () => {
  it('publishes events.<name> and moves lastActiveAt', async () => {
    const c = await contact({ phone: '+14155550600', externalId: 'u-600' });
    h.clock.set('2026-11-28T09:00:00.000Z');
    const res = await h.gql(TRACK, { input: { externalId: 'u-600', name: 'order.shipped', properties: { orderId: 'A-17' } } });
    expect(res.errors).toBeUndefined();
    const tracked = res.data.trackEvent;
    expect(tracked).toMatchObject({ name: 'order.shipped', properties: { orderId: 'A-17' }, occurredAt: '2026-11-28T09:00:00.000Z', duplicate: false });
    expect(tracked.contact).toEqual({ id: c.id, phone: '+14155550600', lastActiveAt: '2026-11-28T09:00:00.000Z' });
    const [published] = await h.recorder.waitFor('events.order.shipped', (e) => e.event.data.eventId === tracked.id);
    expect(published!.event).toMatchObject({ specversion: '1.0', type: 'events.order.shipped', source: 'textloop/contacts' });
    expect(published!.msgId).toBe(published!.event.id);
    expect(published!.event.data).toEqual({
      eventId: tracked.id,
      contactId: c.id,
      name: 'order.shipped',
      properties: { orderId: 'A-17' },
      occurredAt: '2026-11-28T09:00:00.000Z',
    });

    // An older event does not move activity back.
    const older = await h.gql(TRACK, { input: { contactId: c.id, name: 'order.confirmed', occurredAt: '2026-11-20T00:00:00Z' } });
    expect(older.data.trackEvent).toMatchObject({ occurredAt: '2026-11-20T00:00:00.000Z', contact: { lastActiveAt: '2026-11-28T09:00:00.000Z' } });
  });

  it('creates the contact for an unknown phone and publishes contacts.contact.created first', async () => {
    const res = await h.gql(TRACK, { input: { phone: '+1 415 555 0601', name: 'user.signed_up' } });
    expect(res.errors).toBeUndefined();
    const created = res.data.trackEvent.contact;
    expect(created.phone).toBe('+14155550601');
    await h.recorder.waitFor('contacts.contact.created', (e) => e.event.data.contactId === created.id);
    await h.recorder.waitFor('events.user.signed_up', (e) => e.event.data.contactId === created.id);
    const found = await h.gql('{ contactByPhone(phone: "+14155550601") { id country timezone consentHistory { reason } } }');
    expect(found.data.contactByPhone).toEqual({ id: created.id, country: 'US', timezone: 'America/Los_Angeles', consentHistory: [{ reason: 'CREATED' }] });
  });

  it('returns the first event with duplicate: true for a repeated idempotencyKey within 24 h, publishing once', async () => {
    const c = await contact({ phone: '+14155550602' });
    const input = { contactId: c.id, name: 'appointment.booked', properties: { appointmentId: 'ap-1' }, idempotencyKey: 'booking-ap-1' };
    const first = (await h.gql(TRACK, { input })).data.trackEvent;
    expect(first.duplicate).toBe(false);
    h.clock.advance(23 * 3600 * 1000);
    const repeat = await h.gql(TRACK, { input: { ...input, properties: { appointmentId: 'changed' } } });
    expect(repeat.data.trackEvent).toMatchObject({ id: first.id, duplicate: true, properties: { appointmentId: 'ap-1' } });
    await h.settle();
    expect(h.recorder.of('events.appointment.booked').filter((e) => e.event.data.contactId === c.id)).toHaveLength(1);

    // After the window the key is free again.
    h.clock.advance(2 * 3600 * 1000);
    const later = (await h.gql(TRACK, { input })).data.trackEvent;
    expect(later).toMatchObject({ duplicate: false });
    expect(later.id).not.toBe(first.id);
    await h.recorder.waitFor('events.appointment.booked', (e) => e.event.data.contactId === c.id, 2);
  });

  it('handles the same idempotencyKey sent concurrently as one event', async () => {
    const c = await contact({ phone: '+14155550603' });
    const input = { contactId: c.id, name: 'order.paid', idempotencyKey: 'pay-1' };
    const results = await Promise.all(Array.from({ length: 5 }, () => h.gql(TRACK, { input })));
    for (const r of results) expect(r.errors).toBeUndefined();
    const ids = new Set(results.map((r) => r.data.trackEvent.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.data.trackEvent.duplicate)).toHaveLength(1);
  });

  it.each([
    ['a bad name', { phone: '+14155550604', name: 'Order Shipped' }, 'name', /order\.shipped/],
    ['a name with a wildcard', { phone: '+14155550604', name: 'order.>' }, 'name', /order\.shipped/],
    ['properties that are not an object', { phone: '+14155550604', name: 'a.b', properties: [1] }, 'properties', /JSON object/],
    ['no identification', { name: 'a.b' }, 'contactId', /exactly one of contactId, externalId or phone/],
    ['two identifications', { phone: '+14155550604', externalId: 'x', name: 'a.b' }, 'phone', /exactly one/],
    ['a national phone', { phone: '415 555 0604', name: 'a.b' }, 'phone', /international form/],
  ])('rejects %s with BAD_USER_INPUT, writing nothing', async (_what, input, field, message) => {
    await h.settle();
    const before = [await h.count('contacts'), await h.count('tracked_events'), h.deps.outbox.published];
    const res = await h.gql(TRACK, { input });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(res.errors?.[0]?.message).toMatch(message);
    expect([await h.count('contacts'), await h.count('tracked_events'), h.deps.outbox.published]).toEqual(before);
    expect(await h.count('outbox')).toBe(0);
  });

  it('answers NOT_FOUND for an unknown contactId or externalId', async () => {
    expect((await h.gql(TRACK, { input: { contactId: 'nope', name: 'a.b' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await h.gql(TRACK, { input: { externalId: 'nope', name: 'a.b' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
