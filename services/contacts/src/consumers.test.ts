import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, ensureStream, publishEvent } from '@textloop/events';
import { waitFor } from '@textloop/service-kit/testing';
import { startHarness, type Harness } from './test-support';

let h: Harness;
beforeAll(async () => {
  // MESSAGING belongs to messaging: contacts must wait for it rather than fail to start.
  h = await startHarness('contacts_consumers', { streams: ['CONTACTS', 'EVENTS'] });
});
afterAll(async () => {
  await h?.stop();
});

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
const HOUR = 3600 * 1000;

async function publish(subject: string, data: unknown, time: Date = h.clock.now()) {
  const event = createEvent({ source: 'textloop/messaging', type: subject, data, time });
  await publishEvent(h.deps.nats.js, subject, event);
  return event;
}

async function contact(phone: string) {
  const res = await h.gql(`mutation { createContact(input: { phone: "${phone}" }) { id } }`);
  return res.data.createContact.id as string;
}

async function read(id: string) {
  const res = await h.gql('query($id: ID!) { contact(id: $id) { lastActiveAt phoneVerified } }', { id });
  return res.data.contact as { lastActiveAt: string | null; phoneVerified: boolean };
}

describe('consumers', () => {
  it('attach once messaging creates its stream', async () => {
    await ensureStream(h.deps.nats.jsm, 'MESSAGING');
    for (const durable of ['contacts-activity', 'contacts-verification']) {
      await waitFor(() => h.deps.nats.jsm.consumers.info('MESSAGING', durable), { what: `consumer ${durable}` });
    }
  });

  it('messaging.message.received moves lastActiveAt to when it arrived, never back', async () => {
    const id = await contact('+14155550800');
    h.clock.set(new Date(T0 + 2 * HOUR));
    await publish('messaging.message.received', { messageId: 'm1', contactId: id, from: '+14155550800', to: 'Textloop', body: 'hi' }, new Date(T0 + HOUR));
    await waitFor(async () => (await read(id)).lastActiveAt === new Date(T0 + HOUR).toISOString(), { what: 'lastActiveAt to move' });
    await publish('messaging.message.received', { messageId: 'm0', contactId: id, from: '+14155550800', to: 'Textloop', body: 'old' }, new Date(T0));
    await publish('messaging.message.received', { messageId: 'm2', contactId: 'unknown-contact', from: '+14155550899', to: 'Textloop', body: '?' });
    const marker = await contact('+14155550801');
    await publish(
      'messaging.message.received',
      { messageId: 'm3', contactId: marker, from: '+14155550801', to: 'Textloop', body: 'later' },
      new Date(T0 + 2 * HOUR),
    );
    await waitFor(async () => (await read(marker)).lastActiveAt !== null, { what: 'the marker message' });
    expect((await read(id)).lastActiveAt).toBe(new Date(T0 + HOUR).toISOString());
  });

  it('an inbound message ends the inactivity spell, so dormancy is announced again later', async () => {
    const id = await contact('+14155550810');
    h.clock.set(new Date(T0 + 31 * 24 * HOUR));
    await h.gql('mutation { runDormancySweep }');
    await publish('messaging.message.received', { messageId: 'm10', contactId: id, from: '+14155550810', to: 'Textloop', body: 'back' });
    await waitFor(async () => (await read(id)).lastActiveAt === h.clock.now().toISOString(), { what: 'activity' });
    h.clock.advance(30 * 24 * HOUR);
    await h.gql('mutation { runDormancySweep }');
    await waitFor(() => h.recorder.forContact(id, 'contacts.contact.dormant').length === 2, { what: 'a second dormant event' });
    expect(h.recorder.forContact(id, 'contacts.contact.dormant').map((e) => e.event.data.days)).toEqual([30, 30]);
  });

  it('messaging.verification.approved verifies the phone and publishes contacts.contact.verified once', async () => {
    const id = await contact('+14155550820');
    const other = await contact('+14155550821');
    await publish('messaging.verification.approved', { verificationId: 'v1', contactId: id, to: '+14155550820' });
    const [verified] = await h.recorder.waitFor('contacts.contact.verified', (e) => e.event.data.contactId === id);
    expect(verified!.event).toMatchObject({ type: 'contacts.contact.verified', source: 'textloop/contacts', data: { contactId: id, phone: '+14155550820' } });
    expect(verified!.msgId).toBe(verified!.event.id);
    expect((await read(id)).phoneVerified).toBe(true);

    // A second approval, a redelivery of the first (past the server's dedupe), one for another number, one without a contact.
    const again = await publish('messaging.verification.approved', { verificationId: 'v2', contactId: id, to: '+14155550820' });
    await h.deps.nats.js.publish('messaging.verification.approved', JSON.stringify(again), { msgID: `${again.id}-redelivered` });
    await publish('messaging.verification.approved', { verificationId: 'v3', contactId: other, to: '+14155550899' });
    await publish('messaging.verification.approved', { verificationId: 'v4', to: '+14155550821' });
    const marker = await contact('+14155550822');
    await publish('messaging.verification.approved', { verificationId: 'v5', contactId: marker, to: '+14155550822' });
    await h.recorder.waitFor('contacts.contact.verified', (e) => e.event.data.contactId === marker);
    await h.settle();
    expect(h.recorder.forContact(id, 'contacts.contact.verified')).toHaveLength(1);
    expect((await read(other)).phoneVerified).toBe(false);
  });

  it('parks garbage without crashing and keeps consuming', async () => {
    await h.deps.nats.js.publish('messaging.message.received', 'not json');
    await h.deps.nats.js.publish('messaging.verification.approved', JSON.stringify({ specversion: '1.0', id: 'x', source: 's', type: 't', time: 'yesterday' }));
    await publish('messaging.message.received', { messageId: 'bad', contactId: 42 });
    await publish('messaging.verification.approved', { verificationId: 'v6' });
    const id = await contact('+14155550830');
    await publish('messaging.verification.approved', { verificationId: 'v7', contactId: id, to: '+14155550830' });
    await h.recorder.waitFor('contacts.contact.verified', (e) => e.event.data.contactId === id);
    const health = await fetch(`${h.url}/healthz`);
    expect(health.status).toBe(200);
  });
});
