import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@textloop/service-kit/testing';
import { gatewayClient, seedExamples } from '../scripts/seed';
import { startE2E, type E2E } from './support/e2e';

// Flows 1 and 2 end to end (automations issue): six real processes on Postgres and NATS, driven
// through the gateway and the carrier simulator, with the example automations `pnpm seed` creates.

const QUICK_START_DELAY_S = 8;
let e2e: E2E;

beforeAll(async () => {
  e2e = await startE2E({ prefix: 'e2e_auto' });
  const created = await seedExamples(gatewayClient(e2e.platform.urls.graphql, e2e.platform.devApiKey!), {
    quickStartDelay: `PT${QUICK_START_DELAY_S}S`,
  });
  expect(created.automations).toHaveLength(6);
}, 240_000);

afterAll(async () => {
  await e2e?.close();
}, 60_000);

type HandsetMessage = { text: string; receivedAt: string };
const handset = (phone: string): Promise<HandsetMessage[]> => e2e.sim(`/api/handsets/${encodeURIComponent(phone)}/messages`);

async function runsOf(contactId: string) {
  const { contact } = await e2e.gql(
    `query($id: ID!) { contact(id: $id) { automationRuns { id status key failure automation { name }
       steps { index type status dueAt executedAt message { id status body category } } } } }`,
    { id: contactId },
  );
  return contact.automationRuns as any[];
}

describe('onboarding: welcome code, verification, quick start', () => {
  it('texts a code within 2 s, counts wrong codes, approves the right one, and sends the tip after its delay', async () => {
    const phone = '+14155550123';
    const t0 = Date.now();
    const { createContact } = await e2e.gql(`mutation { createContact(input: { phone: "${phone}", firstName: "Grace" }) { id phoneVerified } }`);
    expect(createContact.phoneVerified).toBe(false);

    const welcome = await waitFor(async () => (await handset(phone))[0], { timeoutMs: 10_000, intervalMs: 50, what: 'the welcome SMS' });
    const elapsed = Date.now() - t0;
    expect(elapsed, 'the code SMS reaches the handset within 2 s of createContact').toBeLessThan(2000);
    const code = /code is (\d{6})\b/.exec(welcome.text)?.[1];
    expect(welcome.text).toMatch(/^Welcome to Textloop, Grace! Your verification code is \d{6}\./);
    expect(code).toBeDefined();

    // The code never comes back through the API.
    const runs = await waitFor(async () => {
      const r = await runsOf(createContact.id);
      return r[0]?.steps[0]?.message ? r : undefined;
    });
    expect(runs[0].automation.name).toMatch(/Onboarding/);
    expect(runs[0].steps[0].message.category).toBe('OTP');
    expect(runs[0].steps[0].message.body).not.toContain(code);

    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 1; i <= 2; i++) {
      const { checkVerification } = await e2e.gql(`mutation { checkVerification(input: { to: "${phone}", code: "${wrong}" }) { id status attempts } }`);
      expect(checkVerification).toMatchObject({ status: 'PENDING', attempts: i });
    }
    const { checkVerification } = await e2e.gql(`mutation { checkVerification(input: { to: "${phone}", code: "${code}" }) { id status attempts } }`);
    expect(checkVerification).toMatchObject({ status: 'APPROVED', attempts: 2 });
    const again = await e2e.gqlRaw(`mutation { checkVerification(input: { verificationId: "${checkVerification.id}", code: "${code}" }) { status } }`);
    expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');

    await waitFor(
      async () => (await e2e.gql(`query($id: ID!) { contact(id: $id) { phoneVerified } }`, { id: createContact.id })).contact.phoneVerified === true,
      { timeoutMs: 10_000, what: 'contacts to mark the phone verified' },
    );

    // The quick-start tip: not before its delay, then on time.
    const dueAt = Date.parse(runs[0].steps[1].dueAt);
    expect(dueAt - t0).toBeGreaterThanOrEqual(QUICK_START_DELAY_S * 1000 - 1000);
    if (Date.now() < dueAt - 500) expect(await handset(phone)).toHaveLength(1);
    const tip = await waitFor(async () => (await handset(phone))[1], {
      timeoutMs: QUICK_START_DELAY_S * 1000 + 15_000,
      intervalMs: 100,
      what: 'the quick-start SMS',
    });
    expect(tip.text).toMatch(/^Quick start:/);
    expect(Date.parse(tip.receivedAt)).toBeGreaterThanOrEqual(dueAt);

    const done = await waitFor(async () => {
      const r = await runsOf(createContact.id);
      return r[0].status === 'COMPLETED' ? r[0] : undefined;
    });
    expect(done.steps.map((s: any) => s.status)).toEqual(['DONE', 'DONE']);
    expect(done.steps[1].message.status).toMatch(/SENT|DELIVERED/);
  }, 60_000);
});

describe('transactional updates', () => {
  it('order.shipped sends the update with the order fields', async () => {
    const phone = '+14155550124';
    const { createContact } = await e2e.gql(`mutation { createContact(input: { phone: "${phone}", firstName: "Linus" }) { id } }`);
    await waitFor(async () => (await handset(phone)).length >= 1, { what: 'the welcome SMS' });
    await e2e.gql(
      `mutation($c: ID!) { trackEvent(input: { contactId: $c, name: "order.shipped", properties: { orderId: "A-2002", carrier: "UPS", trackingUrl: "https://t.example/A-2002" } }) { id } }`,
      { c: createContact.id },
    );
    const update = await waitFor(async () => (await handset(phone)).find((m) => m.text.startsWith('Good news')), {
      timeoutMs: 10_000,
      what: 'the shipping SMS',
    });
    expect(update.text).toBe('Good news Linus: order A-2002 has shipped with UPS. Track it: https://t.example/A-2002');
  }, 30_000);
});

describe('appointment reminders', () => {
  it('sends the 24 h reminder on time, keeps the 2 h one pending, moves on re-booking and stops on cancellation', async () => {
    const phone = '+12125550125';
    const { createContact } = await e2e.gql(`mutation { createContact(input: { phone: "${phone}", firstName: "Ada" }) { id timezone } }`);
    expect(createContact.timezone).toBe('America/New_York');
    await waitFor(async () => (await handset(phone)).length >= 1, { what: 'the welcome SMS' });

    const track = (name: string, properties: Record<string, unknown>) =>
      e2e.gql(`mutation($c: ID!, $n: String!, $p: JSON) { trackEvent(input: { contactId: $c, name: $n, properties: $p }) { id } }`, {
        c: createContact.id,
        n: name,
        p: properties,
      });
    const reminders = async () => (await runsOf(createContact.id)).filter((r) => r.automation.name === 'Appointment reminders');

    // Booked 24 h + 6 s ahead: the 24 h reminder is due in 6 s.
    const startsAt = new Date(Date.now() + 24 * 3600_000 + 6000);
    await track('appointment.booked', { appointmentId: 'apt-1', startsAt: startsAt.toISOString() });
    const run = await waitFor(async () => (await reminders())[0]);
    expect(run).toMatchObject({ status: 'ACTIVE', key: 'apt-1' });
    expect(run.steps.map((s: any) => [s.status, Date.parse(s.dueAt)])).toEqual([
      ['PENDING', startsAt.getTime() - 24 * 3600_000],
      ['PENDING', startsAt.getTime() - 2 * 3600_000],
    ]);
    const reminder = await waitFor(async () => (await handset(phone)).find((m) => m.text.startsWith('Reminder')), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the 24 h reminder',
    });
    // Rendered in the contact's zone: e.g. "Sat Nov 28, 10:30 AM" for New York.
    const zone = { timeZone: 'America/New_York' } as const;
    const weekday = new Intl.DateTimeFormat('en-US', { ...zone, weekday: 'short' }).format(startsAt);
    const time = new Intl.DateTimeFormat('en-US', { ...zone, hour: 'numeric', minute: '2-digit', hour12: true }).format(startsAt);
    expect(reminder.text).toContain(`tomorrow, ${weekday} `);
    expect(reminder.text).toContain(`${time}.`);
    const lag = Date.parse(reminder.receivedAt) - (startsAt.getTime() - 24 * 3600_000);
    expect(lag, 'the reminder fires on time (within 1 s of its due time, plus the send)').toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(3000);
    const afterFirst = await waitFor(async () => {
      const r = (await reminders())[0];
      return r.steps[0].status === 'DONE' ? r : undefined;
    });
    expect(afterFirst.steps[1].status).toBe('PENDING');
    expect(Date.parse(afterFirst.steps[0].executedAt) - Date.parse(afterFirst.steps[0].dueAt)).toBeLessThan(1000);

    // Re-booking moves the pending reminder; cancelling stops it.
    const moved = new Date(Date.now() + 3 * 24 * 3600_000);
    await track('appointment.booked', { appointmentId: 'apt-1', startsAt: moved.toISOString() });
    const rebooked = await waitFor(async () => {
      const all = await reminders();
      return all.length === 2 ? all : undefined;
    });
    const [latest, replaced] = rebooked;
    expect(replaced).toMatchObject({ status: 'REPLACED' });
    expect(replaced.steps[1].status).toBe('CANCELED');
    expect(latest.status).toBe('ACTIVE');
    expect(latest.steps.map((s: any) => Date.parse(s.dueAt))).toEqual([moved.getTime() - 24 * 3600_000, moved.getTime() - 2 * 3600_000]);

    await track('appointment.cancelled', { appointmentId: 'apt-1' });
    const canceled = await waitFor(async () => {
      const r = (await reminders())[0];
      return r.status === 'CANCELED' ? r : undefined;
    });
    expect(canceled.steps.map((s: any) => s.status)).toEqual(['CANCELED', 'CANCELED']);
  }, 60_000);
});

describe('scheduling killed while steps are pending', () => {
  it('fires every step exactly once after a restart', async () => {
    const phones = Array.from({ length: 20 }, (_, i) => `+1415555${String(3000 + i).padStart(4, '0')}`);
    const { importContacts } = await e2e.gql(`mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { created } }`, {
      c: phones.map((phone) => ({ phone })),
    });
    expect(importContacts.created).toBe(phones.length);
    const contacts = await Promise.all(
      phones.map(async (phone) => ({ phone, id: (await e2e.gql(`query($p: String!) { contactByPhone(phone: $p) { id } }`, { p: phone })).contactByPhone.id })),
    );
    // Every import is a contact.created: the welcome code goes out; wait for those to settle.
    await waitFor(async () => (await Promise.all(phones.map(handset))).every((h) => h.length === 1), { timeoutMs: 30_000, what: 'welcome SMS' });

    const startsAt = new Date(Date.now() + 24 * 3600_000 + 8000).toISOString();
    for (const c of contacts) {
      await e2e.gql(`mutation($c: ID!, $p: JSON) { trackEvent(input: { contactId: $c, name: "appointment.booked", properties: $p }) { id } }`, {
        c: c.id,
        p: { appointmentId: `apt-${c.phone}`, startsAt },
      });
    }
    await waitFor(async () => {
      const { automationRuns } = await e2e.gql(`{ automationRuns(status: ACTIVE) { automation { name } } }`);
      return automationRuns.filter((r: any) => r.automation.name === 'Appointment reminders').length >= 20;
    });
    await e2e.platform.kill('scheduling');
    // Down past the due time: the reminders are late, never lost.
    await new Promise((r) => setTimeout(r, 9000));
    await e2e.platform.restart('scheduling');
    await waitFor(async () => (await Promise.all(phones.map(handset))).every((h) => h.some((m) => m.text.startsWith('Reminder'))), {
      timeoutMs: 30_000,
      what: 'every reminder after the restart',
    });
    await new Promise((r) => setTimeout(r, 1500));
    for (const phone of phones) {
      const reminders = (await handset(phone)).filter((m) => m.text.startsWith('Reminder'));
      expect(reminders, phone).toHaveLength(1);
    }
  }, 120_000);
});
