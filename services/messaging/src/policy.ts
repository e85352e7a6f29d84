import { sql, type Transaction } from 'kysely';
import { badInput, enqueueEvents } from '@textloop/service-kit';
import { countryTimezone, normalizePhone } from '@textloop/sms';
import type { Database, MessageCategory } from './db/database';
import type { MessagingContext } from './context';
import { EVENT_SOURCE, statusEventEntries, withRetry, type Db, type MessageRow } from './status';

/**
 * The messaging policy: when MARKETING and SURVEY messages may go out (quiet hours, in the
 * recipient's local time) and how many MARKETING messages a contact gets per rolling 7 days.
 * TRANSACTIONAL, OTP and SUPPORT are exempt.
 */
export interface MessagingPolicy {
  /** HH:MM; equal start and end mean no quiet hours */
  quietHoursStart: string;
  quietHoursEnd: string;
  marketingWeeklyCap: number;
}

export interface MessagingPolicyInput {
  quietHoursStart?: string | null;
  quietHoursEnd?: string | null;
  marketingWeeklyCap?: number | null;
}

/** architecture.md, "Compliance defaults". */
export const DEFAULT_POLICY: Readonly<MessagingPolicy> = { quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 3 };
export const MAX_WEEKLY_CAP = 1000;
export const CAP_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

const QUIET_HOURS_CATEGORIES = new Set<MessageCategory>(['MARKETING', 'SURVEY']);
/** Statuses of MARKETING messages that do not count against the weekly cap: nothing went or will go out. */
const NOT_COUNTED = ['SUPPRESSED', 'FAILED', 'CANCELED'] as const;

export const quietHoursApply = (category: MessageCategory) => QUIET_HOURS_CATEGORIES.has(category);
export const capApplies = (category: MessageCategory) => category === 'MARKETING';

// ─────────────────────────── local time (pure) ───────────────────────────

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** "21:30" → 1290 (minutes after local midnight); undefined when not HH:MM from 00:00 to 23:59. */
export function minutesOfDay(hhmm: string): number | undefined {
  const m = HH_MM.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

function minutes(hhmm: string): number {
  const m = minutesOfDay(hhmm);
  if (m === undefined) throw new RangeError(`"${hhmm}" is not a time of day as HH:MM`);
  return m;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** True when the runtime knows this IANA zone. */
export function isValidTimezone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/** The wall-clock time in tz at an instant. */
function wallTime(at: number, tz: string): WallTime {
  const out: Record<string, number> = {};
  for (const p of formatter(tz).formatToParts(at)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! % 24, minute: out.minute!, second: out.second! };
}

/** The wall-clock time read as if it were UTC, in ms: local time as one number. */
const wallMs = (w: WallTime) => Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);

/** UTC offset of tz at an instant, in ms (east positive). */
function offsetAt(at: number, tz: string): number {
  const whole = Math.floor(at / 1000) * 1000;
  return wallMs(wallTime(whole, tz)) - whole;
}

/**
 * The first instant after `after` at which the wall clock in tz reads `local` (wall time as UTC
 * ms). A time that occurs twice (clocks go back) is taken at its first occurrence after `after`; a
 * time that does not occur (clocks go forward over it) is taken at the jump, the first instant
 * the local clock has passed it. Assumes at most one offset change within a day of it, as every
 * real zone does.
 */
function instantAtWallTime(local: number, tz: string, after: number): number | undefined {
  const DAY = 86_400_000;
  const before = offsetAt(local - DAY, tz);
  const later = offsetAt(local + DAY, tz);
  const candidates = [...new Set([local - before, local - later])].sort((a, b) => a - b);
  const valid = candidates.filter((t) => offsetAt(t, tz) === local - t);
  if (valid.length > 0) return valid.find((t) => t > after);
  // A gap: local - later still has the old offset, local - before already the new one. Find the jump.
  let lo = Math.min(local - later, local - before);
  let hi = Math.max(local - later, local - before);
  const old = offsetAt(lo, tz);
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2000) * 1000;
    if (offsetAt(mid, tz) === old) lo = mid;
    else hi = mid;
  }
  return hi > after ? hi : undefined;
}

/**
 * True when `at` falls inside the quiet hours [start, end) on the wall clock of tz. A window whose
 * start is after its end crosses midnight (21:00–08:00); equal start and end mean no quiet hours.
 */
export function inQuietHours(at: Date, tz: string, start: string, end: string): boolean {
  const s = minutes(start);
  const e = minutes(end);
  if (s === e) return false;
  const w = wallTime(at.getTime(), tz);
  const m = w.hour * 60 + w.minute;
  return s < e ? m >= s && m < e : m >= s || m < e;
}

/**
 * The next instant the quiet hours that hold `at` end in tz (`at` itself when it is not inside
 * them). Daylight-saving changes are taken as the wall clock has them: a window ending at 08:00
 * ends at 08:00 local whatever the offset, and one ending inside a skipped hour ends at the jump.
 */
export function quietHoursEnd(at: Date, tz: string, start: string, end: string): Date {
  if (!inQuietHours(at, tz, start, end)) return at;
  const e = minutes(end);
  const t = at.getTime();
  const w = wallTime(t, tz);
  // The end is later today on the local clock, or (past it: the window started this evening) tomorrow.
  const dayOffset = w.hour * 60 + w.minute < e ? 0 : 1;
  for (let extra = 0; extra < 3; extra++) {
    const local = Date.UTC(w.year, w.month - 1, w.day + dayOffset + extra, Math.floor(e / 60), e % 60);
    const found = instantAtWallTime(local, tz, t);
    if (found !== undefined) return new Date(found);
  }
  throw new Error(`cannot find the end of quiet hours ${start}–${end} in ${tz} after ${at.toISOString()}`);
}

/**
 * The recipient's zone: the contact's own, else the number's (area code or country), else the
 * country's, else UTC. Unknown zone names fall through to the next source.
 */
export function recipientTimezone(contactTimezone: string | null | undefined, phone: string, country?: string | null): string {
  if (contactTimezone && isValidTimezone(contactTimezone)) return contactTimezone;
  try {
    const fromNumber = normalizePhone(phone).timezone;
    if (fromNumber && isValidTimezone(fromNumber)) return fromNumber;
  } catch {
    // not a number (e.g. erased): try the country
  }
  const fromCountry = country ? countryTimezone(country) : undefined;
  return fromCountry && isValidTimezone(fromCountry) ? fromCountry : 'UTC';
}

/** History detail of a message held back by quiet hours. */
export function quietHoursDetail(policy: MessagingPolicy, tz: string, until: Date): string {
  return `quiet hours ${policy.quietHoursStart}–${policy.quietHoursEnd} in ${tz}; sends at ${until.toISOString()}`;
}

export function frequencyCapMessage(counted: number, cap: number, hasContact: boolean): string {
  if (cap === 0) return 'MARKETING messages are switched off: the weekly cap (marketingWeeklyCap) is 0.';
  const who = hasContact ? 'This contact' : 'This number';
  return `${who} already has ${counted} MARKETING message${counted === 1 ? '' : 's'} in the last 7 days; the weekly cap (marketingWeeklyCap) is ${cap}.`;
}

// ─────────────────────────── stored policy ───────────────────────────

/** Checks an update; returns the fields it sets. Errors name the field and say what is allowed. */
export function checkPolicyInput(input: MessagingPolicyInput): Partial<MessagingPolicy> {
  const out: Partial<MessagingPolicy> = {};
  for (const field of ['quietHoursStart', 'quietHoursEnd'] as const) {
    const value = input[field];
    if (value === undefined || value === null) continue;
    if (minutesOfDay(value) === undefined) {
      throw badInput(`${field} must be a time of day as HH:MM from 00:00 to 23:59, e.g. "21:00"; got ${JSON.stringify(value)}.`, field);
    }
    out[field] = value;
  }
  const cap = input.marketingWeeklyCap;
  if (cap !== undefined && cap !== null) {
    if (!Number.isInteger(cap) || cap < 0 || cap > MAX_WEEKLY_CAP) {
      throw badInput(`marketingWeeklyCap must be a whole number from 0 to ${MAX_WEEKLY_CAP}; got ${cap}.`, 'marketingWeeklyCap');
    }
    out.marketingWeeklyCap = cap;
  }
  return out;
}

/** The policy in force (the defaults until someone changes it). Read once per batch, never cached across calls: other instances may change it. */
export async function readPolicy(db: Db, options: { forUpdate?: boolean } = {}): Promise<MessagingPolicy> {
  let q = db.selectFrom('messaging_policy').select(['quiet_hours_start', 'quiet_hours_end', 'marketing_weekly_cap']).where('id', '=', 1);
  if (options.forUpdate) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) return { ...DEFAULT_POLICY };
  return { quietHoursStart: row.quiet_hours_start, quietHoursEnd: row.quiet_hours_end, marketingWeeklyCap: row.marketing_weekly_cap };
}

/**
 * Changes the policy. When the quiet hours change, messages waiting for the old quiet hours to end
 * become due now, so the release loop (kicked through onWaitingDue) re-evaluates them under the new
 * policy: sent when the window is over for them, held to the new end otherwise.
 */
export async function updateMessagingPolicy(ctx: MessagingContext, input: MessagingPolicyInput, onWaitingDue?: () => void): Promise<MessagingPolicy> {
  const changes = checkPolicyInput(input);
  const now = ctx.clock.now();
  const { policy, due } = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      // Lock the row (creating it from the defaults first) so concurrent updates of different fields both stick.
      await trx
        .insertInto('messaging_policy')
        .values({
          id: 1,
          quiet_hours_start: DEFAULT_POLICY.quietHoursStart,
          quiet_hours_end: DEFAULT_POLICY.quietHoursEnd,
          marketing_weekly_cap: DEFAULT_POLICY.marketingWeeklyCap,
          updated_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      const current = await readPolicy(trx, { forUpdate: true });
      const next: MessagingPolicy = { ...current, ...changes };
      await trx
        .updateTable('messaging_policy')
        .set({
          quiet_hours_start: next.quietHoursStart,
          quiet_hours_end: next.quietHoursEnd,
          marketing_weekly_cap: next.marketingWeeklyCap,
          updated_at: now,
        })
        .where('id', '=', 1)
        .execute();
      if (next.quietHoursStart === current.quietHoursStart && next.quietHoursEnd === current.quietHoursEnd) return { policy: next, due: 0 };
      // Markers of messages that left SCHEDULED some other way (opt-out, erasure) are dropped here.
      await sql`delete from message_waits w where not exists (select 1 from messages m where m.id = w.message_id and m.status = 'SCHEDULED')`.execute(trx);
      const moved = await trx
        .updateTable('messages')
        .set({ not_before: now, updated_at: now })
        .where('status', '=', 'SCHEDULED')
        .where('not_before', '>', now)
        .where('id', 'in', (eb) => eb.selectFrom('message_waits').select('message_id').where('waiting_for', '=', 'QUIET_HOURS'))
        .executeTakeFirst();
      return { policy: next, due: Number(moved.numUpdatedRows ?? 0) };
    }),
  );
  if (due > 0) {
    ctx.logger.info({ due }, 'quiet hours changed; messages waiting for them are re-evaluated');
    onWaitingDue?.();
  }
  return policy;
}

// ─────────────────────────── applying it ───────────────────────────

/** Whose weekly cap a message counts against: its contact's, or its number's when it has no contact. */
export const capKey = (row: Pick<MessageRow, 'contact_id' | 'to_number'>) => (row.contact_id ? `c:${row.contact_id}` : `n:${row.to_number}`);

/** Arbitrary first key of the advisory locks that guard the weekly cap, so they cannot collide with other advisory locks. */
const CAP_LOCK_CLASS = 0x7e1c_a9;

/**
 * Serializes sends and releases to the same contacts until the transaction ends.
 *
 * Why an advisory lock: the cap counts rows that do not exist yet, so there is no row to lock, and
 * two concurrent sends to one contact would each count the other's row as missing and both pass.
 * SERIALIZABLE would catch that but abort whole 1,000-message batches over unrelated conflicts;
 * a re-check after insert would have to take back a message another instance may already be
 * sending. A transaction-scoped lock per contact makes only senders to the same contact wait,
 * is released at commit or rollback (no leak when an instance dies), and works on PGlite too.
 * Keys are hashed (a collision only makes two contacts share a lock) and taken in hash order, so
 * two batches never wait on each other in a cycle.
 */
export async function lockCapKeys(trx: Transaction<Database>, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`select pg_advisory_xact_lock(${CAP_LOCK_CLASS}::int, s.h)
              from (select distinct hashtext(k) as h from jsonb_array_elements_text(${JSON.stringify([...new Set(keys)])}::jsonb) as k order by 1) s`.execute(
    trx,
  );
}

export interface CountedMessage {
  key: string;
  id: string;
  created_at: Date;
  status: MessageRow['status'];
}

/** MARKETING messages in the cap window for these rows' contacts and numbers, that went or will go out. */
export async function marketingInWindow(db: Db, rows: Array<Pick<MessageRow, 'contact_id' | 'to_number'>>, since: Date): Promise<CountedMessage[]> {
  const contactIds = [...new Set(rows.flatMap((r) => (r.contact_id ? [r.contact_id] : [])))];
  const numbers = [...new Set(rows.flatMap((r) => (r.contact_id ? [] : [r.to_number])))];
  if (contactIds.length === 0 && numbers.length === 0) return [];
  const found = await db
    .selectFrom('messages')
    .select(['id', 'contact_id', 'to_number', 'created_at', 'status'])
    .where('direction', '=', 'OUTBOUND')
    .where('category', '=', 'MARKETING')
    .where('created_at', '>', since)
    .where('status', 'not in', [...NOT_COUNTED])
    .where((eb) =>
      eb.or([
        ...(contactIds.length ? [eb('contact_id', 'in', contactIds)] : []),
        ...(numbers.length ? [eb.and([eb('contact_id', 'is', null), eb('to_number', 'in', numbers)])] : []),
      ]),
    )
    .execute();
  return found.map((r) => ({ key: capKey(r), id: r.id, created_at: r.created_at, status: r.status }));
}

/** Zones of the recipients of these rows, by message id (contacts' zones read from the projection). */
export async function recipientZones(db: Db, rows: MessageRow[]): Promise<Map<string, string>> {
  const ids = [...new Set(rows.flatMap((r) => (r.contact_id ? [r.contact_id] : [])))];
  const zones = new Map<string, string | null>();
  if (ids.length > 0) {
    for (const c of await db.selectFrom('contacts').select(['id', 'timezone']).where('id', 'in', ids).execute()) zones.set(c.id, c.timezone);
  }
  return new Map(rows.map((r) => [r.id, recipientTimezone(r.contact_id ? zones.get(r.contact_id) : undefined, r.to_number, r.country)]));
}

/**
 * Inserts new message rows under the policy. QUEUED MARKETING rows over the weekly cap become
 * SUPPRESSED (FREQUENCY_CAP); QUEUED MARKETING and SURVEY rows due inside the recipient's quiet
 * hours become SCHEDULED until the window ends. `insert` writes the (adjusted) rows and their first
 * history entry (details: history text by message id) and returns the ids it inserted. Batches
 * without such rows go straight to `insert`, with no policy read and no transaction.
 */
export async function insertWithPolicy(
  ctx: MessagingContext,
  rows: MessageRow[],
  insert: (db: Db, details: Map<string, string>) => Promise<Set<string>>,
): Promise<Set<string>> {
  const gated = rows.filter((r) => r.direction === 'OUTBOUND' && r.status === 'QUEUED' && quietHoursApply(r.category));
  if (gated.length === 0) return insert(ctx.db, new Map());
  const policy = await readPolicy(ctx.db);
  const quiet = policy.quietHoursStart !== policy.quietHoursEnd;
  const capped = gated.filter((r) => capApplies(r.category));
  if (!quiet && capped.length === 0) return insert(ctx.db, new Map());
  const zones = quiet ? await recipientZones(ctx.db, gated) : new Map<string, string>();
  const original = gated.map((r) => ({ ...r }));

  // A caller that is already in a transaction (startVerification) keeps its own.
  const inTransaction = <T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> =>
    ctx.db.isTransaction ? work(ctx.db as Transaction<Database>) : ctx.db.transaction().execute(work);
  const inserted = await withRetry(() =>
    inTransaction(async (trx) => {
      gated.forEach((r, i) => Object.assign(r, original[i]));
      const now = ctx.clock.now();
      const details = new Map<string, string>();
      if (capped.length > 0) {
        const cap = policy.marketingWeeklyCap;
        const counts = new Map<string, number>();
        if (cap > 0) {
          await lockCapKeys(trx, capped.map(capKey));
          for (const m of await marketingInWindow(trx, capped, new Date(now.getTime() - CAP_WINDOW_MS))) {
            counts.set(m.key, (counts.get(m.key) ?? 0) + 1);
          }
        }
        const seenKeys = new Set<string>();
        for (const row of capped) {
          // A repeated idempotency key in the batch is not inserted, so it takes no place under the cap.
          if (row.idempotency_key !== null) {
            if (seenKeys.has(row.idempotency_key)) continue;
            seenKeys.add(row.idempotency_key);
          }
          const key = capKey(row);
          const counted = counts.get(key) ?? 0;
          if (counted < cap) {
            counts.set(key, counted + 1);
            continue;
          }
          Object.assign(row, {
            status: 'SUPPRESSED',
            error_code: 'FREQUENCY_CAP',
            error_message: frequencyCapMessage(counted, cap, row.contact_id !== null),
            price_amount: null,
            price_currency: null,
          });
        }
      }
      const held: MessageRow[] = [];
      if (quiet) {
        for (const row of gated) {
          if (row.status !== 'QUEUED') continue;
          const tz = zones.get(row.id)!;
          if (!inQuietHours(row.not_before, tz, policy.quietHoursStart, policy.quietHoursEnd)) continue;
          const until = quietHoursEnd(row.not_before, tz, policy.quietHoursStart, policy.quietHoursEnd);
          Object.assign(row, { status: 'SCHEDULED', not_before: until });
          details.set(row.id, quietHoursDetail(policy, tz, until));
          held.push(row);
        }
      }
      const ids = await insert(trx, details);
      const scheduled = held.filter((r) => ids.has(r.id));
      if (scheduled.length > 0) {
        await trx
          .insertInto('message_waits')
          .values(scheduled.map((r) => ({ message_id: r.id, waiting_for: 'QUIET_HOURS' as const })))
          .onConflict((oc) => oc.column('message_id').doNothing())
          .execute();
        // insertMessages announces only the statuses of status.ts's EVENT_STATUSES, which has no SCHEDULED.
        await enqueueEvents(
          trx,
          EVENT_SOURCE,
          scheduled.flatMap((r) => statusEventEntries(r, 'messaging.message.scheduled')),
          ctx.clock,
        );
      }
      return ids;
    }),
  );
  return inserted;
}
