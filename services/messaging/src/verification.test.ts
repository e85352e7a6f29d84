import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { newId } from '@textloop/events';
import { ManualClock } from '@textloop/service-kit';
import { contactData, startHarness, waitForRow, type Harness } from './test-harness';

let h: Harness;
let clock: ManualClock;
beforeAll(async () => {
  h = await startHarness('msg_verification', { CONTACT_WAIT_MS: '500' });
  // The harness builds deps with the system clock; every module reads ctx.clock, so expiry and the
  // hourly limit run on this one from here on.
  clock = new ManualClock(new Date());
  h.main.instance.ctx.clock = clock;
});
afterAll(async () => {
  await h?.close();
});

const VERIFICATION_FIELDS = 'id to status attempts expiresAt createdAt contact { id }';
const START = `mutation($input: StartVerificationInput!) { startVerification(input: $input) { ${VERIFICATION_FIELDS} } }`;
const CHECK = `mutation($input: CheckVerificationInput!) { checkVerification(input: $input) { ${VERIFICATION_FIELDS} } }`;
const GET = `query($id: ID!) { verification(id: $id) { ${VERIFICATION_FIELDS} } }`;
const MINUTE = 60_000;

function errorOf(res: { errors?: Array<{ message: string; extensions?: Record<string, unknown> }> }) {
  expect(res.errors).toBeDefined();
  return res.errors![0]!;
}

async function start(input: Record<string, unknown>) {
  const res = await h.gql(START, { input });
  expect(res.errors).toBeUndefined();
  return res.data.startVerification;
}

async function check(input: Record<string, unknown>) {
  const res = await h.gql(CHECK, { input });
  expect(res.errors).toBeUndefined();
  return res.data.checkVerification;
}

async function seedContact(phone: string): Promise<string> {
  const contactId = newId();
  await h.publish('contacts.contact.created', contactData(contactId, phone));
  await waitForRow(() => h.main.deps.db.selectFrom('contacts').select('id').where('id', '=', contactId).executeTakeFirst(), 'the projection');
  return contactId;
}

/** The texts a handset received once there are `count` of them, oldest first. */
async function textsTo(phone: string, count: number): Promise<string[]> {
  const messages = await waitForRow(async () => {
    const m = await h.handset(phone);
    return m.length >= count ? m : undefined;
  }, `${count} text(s) to ${phone}`);
  return messages.map((m) => m.text);
}

const codeIn = (text: string) => /\b(\d{4,10})\b/.exec(text)![1]!;
/** A code of the same length that differs in every digit. */
const wrong = (code: string) => [...code].map((d) => String((Number(d) + 1) % 10)).join('');

function messagesOf(verificationId: string) {
  return h.main.deps.db
    .selectFrom('messages')
    .selectAll()
    .where(sql<string>`correlation->>'verificationId'`, '=', verificationId)
    .orderBy('idempotency_key')
    .execute();
}

async function deliveredMessagesOf(verificationId: string, count: number) {
  return waitForRow(async () => {
    const rows = await messagesOf(verificationId);
    return rows.length === count && rows.every((r) => r.status === 'DELIVERED') ? rows : undefined;
  }, `${count} delivered verification message(s)`);
}

describe('startVerification and checkVerification', () => {
  it('texts an OTP code the handset can read and the API cannot; the right code approves and publishes', async () => {
    const phone = '+14155550301';
    const contactId = await seedContact(phone);
    const started = await start({ contactId });
    expect(started).toMatchObject({ to: phone, status: 'PENDING', attempts: 0, contact: { id: contactId } });
    expect(Date.parse(started.expiresAt) - Date.parse(started.createdAt)).toBe(10 * MINUTE);

    const [text] = await textsTo(phone, 1);
    expect(text).toMatch(/^Your Textloop verification code is \d{6}\. It expires in 10 minutes\.$/);
    const code = codeIn(text!);

    const [row] = await deliveredMessagesOf(started.id, 1);
    expect(row).toMatchObject({ category: 'OTP', idempotency_key: `verify:${started.id}:1`, contact_id: contactId });
    const viaApi = await h.gql(`query($id: ID!) { message(id: $id) { body category correlation } }`, { id: row!.id });
    expect(viaApi.data.message).toEqual({
      body: 'Your Textloop verification code is ••••••. It expires in 10 minutes.',
      category: 'OTP',
      correlation: { verificationId: started.id },
    });
    const listed = await h.gql(`query($f: MessageFilter) { messages(filter: $f) { nodes { body } } }`, { f: { contactId } });
    expect(listed.data.messages.nodes.map((n: { body: string }) => n.body)).toEqual(['Your Textloop verification code is ••••••. It expires in 10 minutes.']);
    // Only a salted hash is stored.
    const stored = await h.main.deps.db.selectFrom('verifications').selectAll().where('id', '=', started.id).executeTakeFirstOrThrow();
    expect(stored.code_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.values(stored).map(String)).not.toContain(code);

    const approved = await check({ verificationId: started.id, code });
    expect(approved).toMatchObject({ id: started.id, status: 'APPROVED', attempts: 0 });
    const event = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.verification.approved' && e.data.verificationId === started.id),
      'the approved event',
    );
    expect(event.data).toEqual({ verificationId: started.id, contactId, to: phone });
    // The code is scrubbed from the stored text once the verification is over.
    const [scrubbed] = await messagesOf(started.id);
    expect(scrubbed!.body).toBe('Your Textloop verification code is ••••••. It expires in 10 minutes.');

    const again = errorOf(await h.gql(CHECK, { input: { verificationId: started.id, code } }));
    expect(again.extensions?.code).toBe('CONFLICT');
    expect(again.message).toMatch(/already approved.*start a new verification/);
    expect((await h.gql(GET, { id: started.id })).data.verification).toMatchObject({ status: 'APPROVED', contact: { id: contactId } });
  });

  it('counts wrong codes without failing the call, and fails the verification at the fifth', async () => {
    const phone = '+14155550302';
    const started = await start({ to: '+1 (415) 555-0302' });
    expect(started).toMatchObject({ to: phone, status: 'PENDING', contact: null });
    const code = codeIn((await textsTo(phone, 1))[0]!);

    expect(await check({ verificationId: started.id, code: wrong(code) })).toMatchObject({ status: 'PENDING', attempts: 1 });
    // By number: the latest pending verification of it.
    expect(await check({ to: phone, code: wrong(code) })).toMatchObject({ id: started.id, status: 'PENDING', attempts: 2 });
    // Malformed codes are refused and not counted.
    for (const bad of ['12345', '1234567', 'abcdef']) {
      expect(errorOf(await h.gql(CHECK, { input: { verificationId: started.id, code: bad } })).extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'code',
      });
    }
    expect((await h.gql(GET, { id: started.id })).data.verification.attempts).toBe(2);

    expect(await check({ verificationId: started.id, code: wrong(code) })).toMatchObject({ status: 'PENDING', attempts: 3 });
    expect(await check({ verificationId: started.id, code: wrong(code) })).toMatchObject({ status: 'PENDING', attempts: 4 });
    expect(await check({ verificationId: started.id, code: wrong(code) })).toMatchObject({ status: 'FAILED', attempts: 5 });
    const failed = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.verification.failed' && e.data.verificationId === started.id),
      'the failed event',
    );
    expect(failed.data).toMatchObject({ verificationId: started.id, to: phone });

    // Even the right code is too late now.
    const late = errorOf(await h.gql(CHECK, { input: { verificationId: started.id, code } }));
    expect(late.extensions?.code).toBe('CONFLICT');
    expect(late.message).toMatch(/start a new verification/);
    expect(h.events.some((e) => e.subject === 'messaging.verification.approved' && e.data.verificationId === started.id)).toBe(false);
  });

  it('resends the same code while pending, and refuses a sixth text', async () => {
    const phone = '+14155550303';
    const first = await start({ to: phone });
    for (let i = 0; i < 4; i++) expect((await start({ to: phone })).id).toBe(first.id);
    const texts = await textsTo(phone, 5);
    expect(new Set(texts).size).toBe(1);
    const rows = await messagesOf(first.id);
    expect(rows.map((r) => r.idempotency_key)).toEqual([1, 2, 3, 4, 5].map((n) => `verify:${first.id}:${n}`));
    expect(rows.every((r) => r.category === 'OTP')).toBe(true);

    clock.advance(MINUTE);
    const sixth = errorOf(await h.gql(START, { input: { to: phone } }));
    expect(sixth.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 9 * 60 });
    expect(await messagesOf(first.id)).toHaveLength(5);
    expect(await check({ to: phone, code: codeIn(texts[0]!) })).toMatchObject({ id: first.id, status: 'APPROVED' });
  });

  it('counts concurrent starts and checks one by one', async () => {
    const phone = '+14155550305';
    const starts = await Promise.all(Array.from({ length: 6 }, () => h.gql(START, { input: { to: phone } })));
    const ids = new Set(starts.flatMap((r) => (r.data ? [r.data.startVerification.id] : [])));
    expect(ids.size).toBe(1);
    expect(starts.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED')).toHaveLength(1);
    const [id] = [...ids];
    const code = codeIn((await textsTo(phone, 5))[0]!);

    const wrongs = await Promise.all(Array.from({ length: 4 }, () => check({ verificationId: id, code: wrong(code) })));
    expect(wrongs.map((v) => v.attempts).sort()).toEqual([1, 2, 3, 4]);
    const rights = await Promise.all([1, 2, 3].map(() => h.gql(CHECK, { input: { verificationId: id, code } })));
    expect(rights.filter((r) => r.data?.checkVerification?.status === 'APPROVED')).toHaveLength(1);
    expect(rights.filter((r) => r.errors?.[0]?.extensions?.code === 'CONFLICT')).toHaveLength(2);
    await waitForRow(async () => h.events.some((e) => e.subject === 'messaging.verification.approved' && e.data.verificationId === id), 'the approved event');
    await new Promise((r) => setTimeout(r, 200));
    expect(h.events.filter((e) => e.subject === 'messaging.verification.approved' && e.data.verificationId === id)).toHaveLength(1);
  });

  it('validates codeLength, recipients, codes and templates, writing nothing for a bad input', async () => {
    const count = async () => Number((await sql<{ n: string }>`select count(*) as n from verifications`.execute(h.main.deps.db)).rows[0]!.n);
    const before = await count();
    for (const codeLength of [3, 11]) {
      const err = errorOf(await h.gql(START, { input: { to: '+14155550304', codeLength } }));
      expect(err.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'codeLength' });
      expect(err.message).toMatch(/4 to 10/);
    }
    expect(errorOf(await h.gql(START, { input: {} })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    expect(errorOf(await h.gql(START, { input: { to: '+14155550304', contactId: 'x' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    expect(errorOf(await h.gql(START, { input: { to: '415 555 0304' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'to' });
    expect(errorOf(await h.gql(START, { input: { contactId: newId() } })).extensions?.code).toBe('NOT_FOUND');
    expect(errorOf(await h.gql(START, { input: { to: '+14155550304', template: 'ghost' } })).extensions?.code).toBe('NOT_FOUND');
    await h.gql(`mutation { createTemplate(input: { name: "no_code", body: "Welcome aboard!" }) { id } }`);
    const noCode = errorOf(await h.gql(START, { input: { to: '+14155550304', template: 'no_code' } }));
    expect(noCode.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'template' });
    expect(noCode.message).toMatch(/\{\{ code \}\}/);
    expect(errorOf(await h.gql(CHECK, { input: { verificationId: newId(), code: '123456' } })).extensions?.code).toBe('NOT_FOUND');
    expect(errorOf(await h.gql(CHECK, { input: { to: '+14155550399', code: '123456' } })).extensions?.code).toBe('NOT_FOUND');
    expect(errorOf(await h.gql(CHECK, { input: { code: '123456' } })).extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await count()).toBe(before);

    // A template with the code, and an 8-digit code.
    const created = await h.gql(`mutation { createTemplate(input: { name: "otp_welcome", body: "Welcome to Acme! Your code: {{ code }}" }) { id } }`);
    expect(created.errors).toBeUndefined();
    const started = await start({ to: '+14155550304', template: 'otp_welcome', codeLength: 8 });
    const [text] = await textsTo('+14155550304', 1);
    expect(text).toMatch(/^Welcome to Acme! Your code: \d{8}$/);
    const [row] = await messagesOf(started.id);
    expect(row!.category).toBe('OTP');
    expect(errorOf(await h.gql(CHECK, { input: { verificationId: started.id, code: '123456' } })).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'code',
    });
    expect(await check({ verificationId: started.id, code: codeIn(text!) })).toMatchObject({ status: 'APPROVED', attempts: 0 });
  });
});

describe('messaging.cmd.verify', () => {
  async function settled() {
    await waitForRow(async () => {
      const info = await h.main.deps.nats.jsm.consumers.info('MESSAGING', 'messaging-cmd-verify');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 'the verify consumer to finish');
  }

  it('starts one verification per requestId, resends once per requestId, and acks what it cannot do', async () => {
    const phone = '+14155550310';
    const contactId = await seedContact(phone);
    const command = { requestId: 'step-1', contactId, correlation: { automationRunId: 'run-7', step: 1 } };
    await h.publish('messaging.cmd.verify', command, { source: 'textloop/scheduling' });
    await h.publish('messaging.cmd.verify', command, { source: 'textloop/scheduling' });
    await settled();
    const verifications = await h.main.deps.db.selectFrom('verifications').selectAll().where('to_number', '=', phone).execute();
    expect(verifications).toHaveLength(1);
    expect(verifications[0]).toMatchObject({ request_id: 'step-1', contact_id: contactId, sends: 1, status: 'PENDING' });
    const id = verifications[0]!.id;
    const [message] = await messagesOf(id);
    expect(message!.correlation).toEqual({ automationRunId: 'run-7', step: 1, verificationId: id });
    const queued = await waitForRow(
      async () => h.events.find((e) => e.subject === 'messaging.message.queued' && e.data.messageId === message!.id),
      'the queued event',
    );
    expect(queued.data.correlation).toEqual({ automationRunId: 'run-7', step: 1, verificationId: id });

    // Another request while it is pending resends the code, once however often it is delivered.
    const resend = { requestId: 'step-2', to: phone };
    await h.publish('messaging.cmd.verify', resend, { source: 'textloop/scheduling' });
    await h.publish('messaging.cmd.verify', resend, { source: 'textloop/scheduling' });
    await settled();
    expect(await messagesOf(id)).toHaveLength(2);
    expect((await h.main.deps.db.selectFrom('verifications').select('sends').where('id', '=', id).executeTakeFirstOrThrow()).sends).toBe(2);
    const texts = await textsTo(phone, 2);
    expect(texts[1]).toBe(texts[0]);

    // Invalid: logged and acked, nothing started, nothing retried.
    await h.publish('messaging.cmd.verify', { requestId: 'bad-1', to: '+14155550311', codeLength: 2 }, { source: 'textloop/scheduling' });
    await settled();
    expect(await h.main.deps.db.selectFrom('verifications').select('id').where('to_number', '=', '+14155550311').execute()).toHaveLength(0);
  });
});

describe('time', () => {
  it('expires a code after 10 minutes: checking it is a CONFLICT and its text is scrubbed', async () => {
    const phone = '+14155550320';
    const started = await start({ to: phone });
    const code = codeIn((await textsTo(phone, 1))[0]!);
    await deliveredMessagesOf(started.id, 1);

    clock.advance(10 * MINUTE + 1000);
    expect((await h.gql(GET, { id: started.id })).data.verification.status).toBe('EXPIRED');
    const err = errorOf(await h.gql(CHECK, { input: { verificationId: started.id, code } }));
    expect(err.extensions?.code).toBe('CONFLICT');
    expect(err.message).toMatch(/expired.*start a new verification/);
    const stored = await h.main.deps.db.selectFrom('verifications').select('status').where('id', '=', started.id).executeTakeFirstOrThrow();
    expect(stored.status).toBe('EXPIRED');
    expect((await messagesOf(started.id))[0]!.body).toBe('Your Textloop verification code is ••••••. It expires in 10 minutes.');
    expect(errorOf(await h.gql(CHECK, { input: { to: phone, code } })).extensions?.code).toBe('NOT_FOUND');

    // A start after expiry is a new verification with a new code.
    const next = await start({ to: phone });
    expect(next.id).not.toBe(started.id);
  });

  it('allows 5 new verifications per number per rolling hour and says when the next one is allowed', async () => {
    const phone = '+14155550330';
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      ids.add((await start({ to: phone })).id);
      clock.advance(11 * MINUTE); // past the validity, so the next start is a new verification
    }
    expect(ids.size).toBe(5);
    // 55 minutes after the first: it leaves the hour in 5 minutes.
    const limited = errorOf(await h.gql(START, { input: { to: phone } }));
    expect(limited.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 300 });
    expect(limited.message).toMatch(/try again in 300 seconds/);
    clock.advance(299_000);
    expect(errorOf(await h.gql(START, { input: { to: phone } })).extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
    clock.advance(1000);
    expect(ids.has((await start({ to: phone })).id)).toBe(false);
    const statuses = await h.main.deps.db.selectFrom('verifications').select('status').where('to_number', '=', phone).orderBy('created_at').execute();
    expect(statuses.map((s) => s.status)).toEqual(['EXPIRED', 'EXPIRED', 'EXPIRED', 'EXPIRED', 'EXPIRED', 'PENDING']);
  });
});
