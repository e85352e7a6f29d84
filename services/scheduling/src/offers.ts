import { randomInt } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { badInput } from '@textloop/service-kit';
import type { Database, StoredOffer } from './db/database';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Personal offer codes. A code is PREFIX-XXXXXX: the offer's prefix, a dash and 6 characters
 * drawn with crypto.randomInt from 31 that cannot be confused when read aloud or typed from a
 * small screen (no 0/O, 1/I/L): 31^6 ≈ 887 million codes per prefix, so a guessed code is almost
 * never a live one. Codes are unique (the table's primary key; a collision is retried).
 */
export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const CODE_LENGTH = 6;
export const CODE_PREFIX_PATTERN = /^[A-Z0-9]{2,10}$/;
const DAY_MS = 24 * 3600_000;
const MAX_VALID_DAYS = 3650;

export function generateCode(prefix: string): string {
  let random = '';
  for (let i = 0; i < CODE_LENGTH; i++) random += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${prefix}-${random}`;
}

/** How people type a code back: any case, stray spaces. */
export function normalizeCode(value: string): string {
  return value.trim().toUpperCase();
}

export interface OfferInput {
  codePrefix: string;
  discountPercent?: number | null;
  validDays?: number | null;
}

/** Validates an OfferInput (field: where it sits in the request, e.g. offer or steps[1].offer). */
export function checkOffer(input: OfferInput, field: string): StoredOffer {
  const prefix = (input.codePrefix ?? '').trim().toUpperCase();
  if (!CODE_PREFIX_PATTERN.test(prefix)) {
    throw badInput(
      `${field}.codePrefix "${input.codePrefix}" must be 2 to 10 letters A–Z or digits, e.g. BACK (codes look like BACK-7K3Q9M).`,
      `${field}.codePrefix`,
    );
  }
  const percent = input.discountPercent ?? null;
  if (percent !== null && (!Number.isInteger(percent) || percent < 1 || percent > 100)) {
    throw badInput(`${field}.discountPercent is ${percent}; give a whole percentage from 1 to 100, or leave it out.`, `${field}.discountPercent`);
  }
  const validDays = input.validDays ?? 14;
  if (!Number.isInteger(validDays) || validDays < 1 || validDays > MAX_VALID_DAYS) {
    throw badInput(`${field}.validDays is ${validDays}; a code must stay valid for 1 to ${MAX_VALID_DAYS} days (default 14).`, `${field}.validDays`);
  }
  return { codePrefix: prefix, discountPercent: percent, validDays };
}

export function expiryOf(offer: StoredOffer, issuedAt: Date): Date {
  return new Date(issuedAt.getTime() + offer.validDays * DAY_MS);
}

/** What templates see as offer.* */
export function offerVariables(offer: StoredOffer, code: string, expiresAt: Date): { code: string; discountPercent: number | null; expiresAt: string } {
  return { code, discountPercent: offer.discountPercent, expiresAt: expiresAt.toISOString() };
}

/**
 * Advice about a template and an offer (not errors: the send still works): an offer whose code
 * the template never shows is wasted, and a template that reads offer.* without an offer fails to
 * render for every recipient. `variables` is what rpc.messaging.templates says the body reads.
 */
export function offerWarnings(template: string, variables: string[], offer: StoredOffer | null): string[] {
  const readsOffer = variables.filter((v) => v === 'offer' || v.startsWith('offer.') || v.startsWith('offer['));
  if (offer && !variables.some((v) => v === 'offer.code' || v.startsWith('offer.code.') || v.startsWith('offer.code['))) {
    return [`Template "${template}" does not show the offer code: add {{ offer.code }} to it, or each recipient gets a code they never see.`];
  }
  if (!offer && readsOffer.length > 0) {
    return [`Template "${template}" reads ${readsOffer.join(', ')} but no offer is set: add an offer, or the message fails to render for every recipient.`];
  }
  return [];
}

export interface CodeRequest {
  /** the caller's key for the result, e.g. the recipient or step id */
  key: string;
  offer: StoredOffer;
  contactId: string | null;
  campaignId?: string | null;
  campaignRecipientId?: string | null;
  automationId?: string | null;
  runId?: string | null;
  stepId?: string | null;
}

export interface IssuedCode {
  code: string;
  expiresAt: Date;
}

/**
 * Issues one code per request inside the caller's transaction (the one that writes the command
 * carrying it). Codes that collide with an existing one are drawn again.
 */
export async function issueCodes(
  trx: Transaction<Database>,
  requests: CodeRequest[],
  now: Date,
  generate: (prefix: string) => string = generateCode,
): Promise<Map<string, IssuedCode>> {
  const issued = new Map<string, IssuedCode>();
  let remaining = requests;
  for (let round = 0; remaining.length > 0; round++) {
    if (round >= 10) throw new Error(`could not draw unique offer codes for ${remaining.length} messages after 10 rounds`);
    const drawn = new Map<string, CodeRequest>();
    for (const r of remaining) {
      let code = generate(r.offer.codePrefix);
      while (drawn.has(code)) code = generate(r.offer.codePrefix);
      drawn.set(code, r);
    }
    const inserted = await trx
      .insertInto('offer_codes')
      .values(
        [...drawn].map(([code, r]) => ({
          code,
          contact_id: r.contactId,
          campaign_id: r.campaignId ?? null,
          campaign_recipient_id: r.campaignRecipientId ?? null,
          automation_id: r.automationId ?? null,
          run_id: r.runId ?? null,
          step_id: r.stepId ?? null,
          discount_percent: r.offer.discountPercent,
          created_at: now,
          expires_at: expiryOf(r.offer, now),
        })),
      )
      .onConflict((oc) => oc.column('code').doNothing())
      .returning(['code', 'expires_at'])
      .execute();
    for (const row of inserted) issued.set(drawn.get(row.code)!.key, { code: row.code, expiresAt: row.expires_at });
    remaining = remaining.filter((r) => !issued.has(r.key));
  }
  return issued;
}

export interface OfferStats {
  issued: number;
  redeemed: number;
  reactivated: number;
}

/** Codes an automation's steps issued, how many were redeemed, and how many contacts came back within the validity. */
export async function automationOfferStats(db: Db, automationId: string): Promise<OfferStats> {
  const row = await db
    .selectFrom('offer_codes')
    .select([
      sql<number>`count(*)::int`.as('issued'),
      sql<number>`(count(*) filter (where redeemed_at is not null))::int`.as('redeemed'),
      sql<number>`(count(*) filter (where reactivated_at is not null))::int`.as('reactivated'),
    ])
    .where('automation_id', '=', automationId)
    .executeTakeFirstOrThrow();
  return { issued: row.issued, redeemed: row.redeemed, reactivated: row.reactivated };
}
