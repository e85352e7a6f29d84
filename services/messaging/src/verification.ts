import { randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { GraphQLError } from 'graphql';
import { sql, type Selectable, type Transaction } from 'kysely';
import { newId } from '@textloop/events';
import { badInput, conflict, enqueueEvents, markProcessed, notFound, rateLimited } from '@textloop/service-kit';
import type { MessagingContext } from './context';
import { awaitContacts, contactsByPhones } from './contacts-projection';
import type { Database, MessageStatus, VerificationStatus, VerificationsTable } from './db/database';
import { hasLiquid, normalized, sendMessages, type SendInput } from './sending';
import { EVENT_SOURCE } from './status';
import { templateByName } from './templates';

export type VerificationRow = Selectable<VerificationsTable>;

export const DEFAULT_CODE_LENGTH = 6;
export const MIN_CODE_LENGTH = 4;
export const MAX_CODE_LENGTH = 10;
export const VERIFICATION_TTL_MS = 10 * 60_000;
/** Wrong codes after which the verification FAILS. */
export const MAX_CHECK_ATTEMPTS = 5;
/** Texts per verification (the first one and its resends). */
export const MAX_SENDS = 5;
/** New verifications per number per rolling hour. */
export const MAX_NEW_PER_HOUR = 5;
const HOUR_MS = 3_600_000;

/** Sent when startVerification names no template. */
export const DEFAULT_VERIFICATION_TEXT = 'Your Textloop verification code is {{ code }}. It expires in 10 minutes.';

/** The processed_events consumer under which messaging.cmd.verify requestIds are remembered (the durable's name). */
export const VERIFY_REQUESTS = 'messaging-cmd-verify';

const SCRYPT = { keyBytes: 32, options: { N: 2 ** 14, r: 8, p: 1 } } as const;
/** Messages the dispatcher still has to read the body of: their code is left in place. */
const UNSENT: MessageStatus[] = ['SCHEDULED', 'QUEUED', 'SENDING'];

export interface StartVerificationInput {
  contactId?: string | null;
  to?: string | null;
  template?: string | null;
  codeLength?: number | null;
}

export interface CheckVerificationInput {
  verificationId?: string | null;
  to?: string | null;
  code: string;
}

export interface StartOptions {
  /** messaging.cmd.verify requestId: a repeat changes nothing. */
  requestId?: string | null;
  /** The command's correlation, echoed on the code's message events beside verificationId. */
  correlation?: Record<string, unknown> | null;
  /** The Textloop service that sent the command: it also gets the code messages' statuses on messaging.notify.<service>.* */
  requester?: string | null;
}

/** The idempotency key of the n-th text of a verification (n from 1). */
export const verificationMessageKey = (verificationId: string, sendNumber: number) => `verify:${verificationId}:${sendNumber}`;

/** Every run of 4–10 digits becomes "•" of the same length, so a code cannot be read back. */
export function redactCodes(body: string): string {
  return body.replace(/\d+/g, (run) => (run.length >= MIN_CODE_LENGTH && run.length <= MAX_CODE_LENGTH ? '•'.repeat(run.length) : run));
}

/** The body as the API shows it: a verification code is never read back. */
export function visibleBody(body: string, correlation: Record<string, unknown> | null): string {
  return typeof correlation?.verificationId === 'string' ? redactCodes(body) : body;
}

/** A PENDING verification whose time ran out reads as EXPIRED even before anything marks it. */
export function effectiveStatus(row: VerificationRow, now: Date): VerificationStatus {
  return row.status === 'PENDING' && row.expires_at.getTime() <= now.getTime() ? 'EXPIRED' : row.status;
}

function generateCode(length: number): string {
  return String(randomInt(0, 10 ** length)).padStart(length, '0');
}

function hashCode(code: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(code, salt, SCRYPT.keyBytes, SCRYPT.options, (err, key) => (err ? reject(err) : resolve(key))));
}

async function codeMatches(code: string, row: VerificationRow): Promise<boolean> {
  const expected = Buffer.from(row.code_hash, 'hex');
  const actual = await hashCode(code, Buffer.from(row.code_salt, 'hex'));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

const secondsUntil = (at: Date, now: Date) => Math.max(1, Math.ceil((at.getTime() - now.getTime()) / 1000));

export async function verificationById(ctx: MessagingContext, id: string): Promise<VerificationRow | undefined> {
  return ctx.db.selectFrom('verifications').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Moves a verification to a final status and masks the code in the stored bodies of its texts that
 * are done; texts still waiting for the dispatcher keep it (GraphQL masks them anyway).
 */
async function close(trx: Transaction<Database>, row: VerificationRow, status: VerificationStatus, now: Date): Promise<VerificationRow> {
  await trx.updateTable('verifications').set({ status, updated_at: now }).where('id', '=', row.id).execute();
  const keys = Array.from({ length: row.sends }, (_, i) => verificationMessageKey(row.id, i + 1));
  const messages = await trx.selectFrom('messages').select(['id', 'body']).where('idempotency_key', 'in', keys).where('status', 'not in', UNSENT).execute();
  for (const m of messages) {
    const masked = redactCodes(m.body);
    if (masked === m.body) continue;
    await trx.updateTable('messages').set({ body: masked, updated_at: now }).where('id', '=', m.id).where('status', 'not in', UNSENT).execute();
  }
  return { ...row, status, updated_at: now };
}

/**
 * Marks a few PENDING verifications whose time ran out as EXPIRED (scrubbing their texts), so
 * codes nobody checked do not stay readable in the database.
 */
export async function expireDue(ctx: MessagingContext, limit = 20): Promise<number> {
  return ctx.db.transaction().execute(async (trx) => {
    const now = ctx.clock.now();
    const due = await trx
      .selectFrom('verifications')
      .selectAll()
      .where('status', '=', 'PENDING')
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    for (const row of due) await close(trx, row, 'EXPIRED', now);
    return due.length;
  });
}

interface Recipient {
  to: string;
  contactId: string | null;
}

async function recipientOf(ctx: MessagingContext, input: StartVerificationInput): Promise<Recipient> {
  if (Boolean(input.contactId) === Boolean(input.to?.trim())) {
    throw badInput(
      input.contactId ? 'Give contactId or to, not both.' : 'Say whose number to verify: give contactId or to (a phone number with its country code).',
      'to',
    );
  }
  if (input.contactId) {
    const contact = (await awaitContacts(ctx, [input.contactId])).get(input.contactId);
    if (!contact) throw notFound(`No contact has id "${input.contactId}" (or it was deleted).`);
    return { to: contact.phone, contactId: contact.id };
  }
  const to = normalized(input.to!, undefined, 'to').e164;
  return { to, contactId: (await contactsByPhones(ctx, [to])).get(to)?.id ?? null };
}

type Text = { template: string } | { body: string };

/** The first text: a template that shows {{ code }}, or the default text. */
async function textFor(ctx: MessagingContext, template: string | null | undefined): Promise<Text> {
  if (!template) return { body: DEFAULT_VERIFICATION_TEXT };
  const row = await templateByName(ctx, template);
  if (!row) throw notFound(`No template is named "${template}"; create it with createTemplate or check the spelling.`);
  if (!row.variables.includes('code')) {
    throw badInput(`Template "${template}" does not show the code: add {{ code }} to its body, or leave template out to send the default text.`, 'template');
  }
  return { template };
}

/**
 * Queues one text of a verification through the normal send path, inside the caller's transaction
 * (the verification and its text commit together); the wake-ups wait for the commit.
 */
async function queueText(
  ctx: MessagingContext,
  trx: Transaction<Database>,
  wake: { dispatcher: boolean; outbox: boolean },
  row: VerificationRow,
  sendNumber: number,
  text: Text,
  variables: Record<string, unknown>,
  origin: StartOptions,
): Promise<void> {
  const txCtx: MessagingContext = {
    ...ctx,
    db: trx,
    kickDispatcher: () => void (wake.dispatcher = true),
    outbox: { kick: () => void (wake.outbox = true) },
  };
  const input: SendInput = { to: row.to_number, ...text, variables, category: 'OTP', idempotencyKey: verificationMessageKey(row.id, sendNumber) };
  try {
    await sendMessages(txCtx, [{ input, correlation: { ...origin.correlation, verificationId: row.id }, requester: origin.requester }], { indexed: false });
  } catch (err) {
    // The template needs something startVerification cannot give (only code and contact.* exist).
    if (err instanceof GraphQLError && err.extensions.code === 'BAD_USER_INPUT' && err.extensions.field === 'variables') {
      throw badInput(`${err.message} startVerification passes only {{ code }} (and contact.*); use a template that needs nothing else.`, 'template', err);
    }
    throw err;
  }
}

/** A stored text sent again as it is: Liquid markup in it (unlikely) must not be rendered twice. */
const literal = (body: string) => (hasLiquid(body) ? `{% raw %}${body}{% endraw %}` : body);

/**
 * Starts a verification of a number, or resends the code of its PENDING one (same code, same text).
 * Limits: MAX_SENDS texts per verification, MAX_NEW_PER_HOUR new verifications per number per hour.
 * With options.requestId (messaging.cmd.verify), a repeated request changes nothing.
 */
export async function startVerification(ctx: MessagingContext, input: StartVerificationInput, options: StartOptions = {}): Promise<VerificationRow> {
  const codeLength = input.codeLength ?? DEFAULT_CODE_LENGTH;
  if (!Number.isInteger(codeLength) || codeLength < MIN_CODE_LENGTH || codeLength > MAX_CODE_LENGTH) {
    throw badInput(
      `codeLength must be a whole number from ${MIN_CODE_LENGTH} to ${MAX_CODE_LENGTH} (default ${DEFAULT_CODE_LENGTH}); got ${codeLength}.`,
      'codeLength',
    );
  }
  const requestId = options.requestId ?? null;
  if (requestId) {
    const known = await ctx.db.selectFrom('verifications').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    if (known) return known;
  }
  const recipient = await recipientOf(ctx, input);
  const text = await textFor(ctx, input.template);
  await expireDue(ctx);

  const wake = { dispatcher: false, outbox: false };
  const row = await ctx.db.transaction().execute(async (trx) => {
    const now = ctx.clock.now();
    if (requestId) {
      const known = await trx.selectFrom('verifications').selectAll().where('request_id', '=', requestId).executeTakeFirst();
      if (known) return known;
      // Already handled as a resend of the number's verification.
      if (!(await markProcessed(trx, VERIFY_REQUESTS, requestId))) {
        const latest = await trx
          .selectFrom('verifications')
          .selectAll()
          .where('to_number', '=', recipient.to)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .executeTakeFirst();
        if (latest) return latest;
      }
    }
    // One start at a time per number: the hourly count and "one PENDING per number" hold under concurrency.
    await sql`select pg_advisory_xact_lock(hashtext(${`verify:${recipient.to}`}))`.execute(trx);
    const pending = await trx
      .selectFrom('verifications')
      .selectAll()
      .where('to_number', '=', recipient.to)
      .where('status', '=', 'PENDING')
      .forUpdate()
      .executeTakeFirst();

    if (pending && pending.expires_at.getTime() > now.getTime()) {
      if (pending.sends >= MAX_SENDS) {
        const wait = secondsUntil(pending.expires_at, now);
        throw rateLimited(
          `The code of this verification was already sent ${MAX_SENDS} times; start a new verification once it expires in ${wait} seconds.`,
          wait,
        );
      }
      const first = await trx.selectFrom('messages').select('body').where('idempotency_key', '=', verificationMessageKey(pending.id, 1)).executeTakeFirst();
      if (first?.body) {
        const sends = pending.sends + 1;
        await trx.updateTable('verifications').set({ sends, updated_at: now }).where('id', '=', pending.id).execute();
        const resent = { ...pending, sends, updated_at: now };
        await queueText(ctx, trx, wake, resent, sends, { body: literal(first.body) }, {}, options);
        return resent;
      }
      // The first text is gone (its contact was erased): the code cannot be resent, so a new one replaces it.
      await close(trx, pending, 'CANCELED', now);
    }

    const recent = await trx
      .selectFrom('verifications')
      .select('created_at')
      .where('to_number', '=', recipient.to)
      .where('created_at', '>', new Date(now.getTime() - HOUR_MS))
      .orderBy('created_at', 'desc')
      .limit(MAX_NEW_PER_HOUR)
      .execute();
    if (recent.length >= MAX_NEW_PER_HOUR) {
      // Allowed again when the oldest of the last MAX_NEW_PER_HOUR leaves the hour.
      const wait = secondsUntil(new Date(recent[MAX_NEW_PER_HOUR - 1]!.created_at.getTime() + HOUR_MS), now);
      throw rateLimited(
        `${recipient.to} was sent ${MAX_NEW_PER_HOUR} verifications in the last hour; try again in ${wait} seconds (or resend the pending code).`,
        wait,
      );
    }
    if (pending) await close(trx, pending, 'EXPIRED', now);

    const code = generateCode(codeLength);
    const salt = randomBytes(16);
    const created: VerificationRow = {
      id: newId(),
      to_number: recipient.to,
      contact_id: recipient.contactId,
      status: 'PENDING',
      code_length: codeLength,
      code_salt: salt.toString('hex'),
      code_hash: (await hashCode(code, salt)).toString('hex'),
      attempts: 0,
      sends: 1,
      request_id: requestId,
      expires_at: new Date(now.getTime() + VERIFICATION_TTL_MS),
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto('verifications').values(created).execute();
    await queueText(ctx, trx, wake, created, 1, text, { code }, options);
    return created;
  });
  if (wake.dispatcher) ctx.kickDispatcher();
  if (wake.outbox) ctx.outbox.kick();
  ctx.logger.debug({ verificationId: row.id, sends: row.sends }, 'verification code queued');
  return row;
}

function closedMessage(row: VerificationRow): string {
  switch (row.status) {
    case 'EXPIRED':
      return `This verification expired at ${row.expires_at.toISOString()}; start a new verification to get a new code.`;
    case 'APPROVED':
      return 'This verification was already approved; start a new verification to check the number again.';
    case 'FAILED':
      return `This verification failed after ${MAX_CHECK_ATTEMPTS} wrong codes; start a new verification to get a new code.`;
    default:
      return 'This verification was canceled; start a new verification to get a new code.';
  }
}

/**
 * Checks a code. A wrong code is not an error: attempts grows and the verification stays PENDING
 * (FAILED at MAX_CHECK_ATTEMPTS). The verification row is locked, so concurrent checks count once each
 * and approve at most once.
 */
export async function checkVerification(ctx: MessagingContext, input: CheckVerificationInput): Promise<VerificationRow> {
  if (Boolean(input.verificationId) === Boolean(input.to?.trim())) {
    throw badInput(
      input.verificationId
        ? 'Give verificationId or to, not both.'
        : 'Say which verification to check: give verificationId or to (the number the code was sent to).',
      'verificationId',
    );
  }
  const to = input.verificationId ? undefined : normalized(input.to!, undefined, 'to').e164;
  const code = input.code.trim();
  const outcome = await ctx.db.transaction().execute(async (trx) => {
    const now = ctx.clock.now();
    const row = await trx
      .selectFrom('verifications')
      .selectAll()
      .$if(to === undefined, (q) => q.where('id', '=', input.verificationId!))
      .$if(to !== undefined, (q) => q.where('to_number', '=', to!).where('status', '=', 'PENDING'))
      .forUpdate()
      .executeTakeFirst();
    if (!row) {
      throw notFound(
        to
          ? `No verification is pending for ${to}; start one with startVerification.`
          : `No verification has id "${input.verificationId}"; startVerification returns the id to check.`,
      );
    }
    if (effectiveStatus(row, now) === 'EXPIRED') {
      return { row: row.status === 'PENDING' ? await close(trx, row, 'EXPIRED', now) : row, open: false, published: false };
    }
    if (row.status !== 'PENDING') return { row, open: false, published: false };
    if (!new RegExp(`^[0-9]{${row.code_length}}$`).test(code)) {
      throw badInput(`code must be the ${row.code_length} digits from the text message.`, 'code');
    }
    const event = { verificationId: row.id, contactId: row.contact_id, to: row.to_number };
    if (await codeMatches(code, row)) {
      const approved = await close(trx, row, 'APPROVED', now);
      await enqueueEvents(trx, EVENT_SOURCE, [{ subject: 'messaging.verification.approved', data: event }], ctx.clock);
      return { row: approved, open: true, published: true };
    }
    const attempts = row.attempts + 1;
    await trx.updateTable('verifications').set({ attempts, updated_at: now }).where('id', '=', row.id).execute();
    if (attempts < MAX_CHECK_ATTEMPTS) return { row: { ...row, attempts, updated_at: now }, open: true, published: false };
    const failed = await close(trx, { ...row, attempts }, 'FAILED', now);
    await enqueueEvents(trx, EVENT_SOURCE, [{ subject: 'messaging.verification.failed', data: event }], ctx.clock);
    return { row: failed, open: true, published: true };
  });
  if (outcome.published) ctx.outbox.kick();
  if (!outcome.open) throw conflict(closedMessage(outcome.row));
  ctx.logger.debug({ verificationId: outcome.row.id, status: outcome.row.status, attempts: outcome.row.attempts }, 'verification checked');
  return outcome.row;
}
