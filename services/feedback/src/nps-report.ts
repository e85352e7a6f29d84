import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { badInput, notFound } from '@textloop/service-kit';
import type { Database } from './db/database';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * npsReport: Net Promoter Score over survey responses, computed in SQL.
 *
 * Rules (also in the schema's descriptions):
 * - NPS = %promoters − %detractors of the responses, −100..100, rounded half away from zero to one
 *   decimal (5 promoters, 2 passives, 3 detractors → 20.0); null when there are no responses.
 * - Filters: surveyId (an unknown one is NOT_FOUND), touchpoint (blank means all), and the window
 *   [since, until) (since inclusive, until exclusive; since must be before until, BAD_USER_INPUT).
 *   Responses are in the window by respondedAt, invitations by when they were sent.
 * - invitations: invitations sent in the window (survey and touchpoint filters apply), except FAILED
 *   ones, which were never sent. responseRate = responses / invitations rounded to four decimals,
 *   0 without invitations. Responses and invitations are each counted by their own time, so at the
 *   edges of a window the rate can exceed 1.
 * - A response's (or invitation's) touchpoint is the one it was recorded with (its survey's when the
 *   invitation was sent); one without counts under its survey's touchpoint, or "unknown" when the
 *   survey has none. The touchpoint filter and byTouchpoint use that. byTouchpoint lists the
 *   touchpoints with responses, by name.
 * - lowSample: fewer than 30 responses.
 * - Erased contacts' responses (contact_id null) count like any other.
 * - trend: one point per UTC bucket (calendar days, ISO weeks starting Monday, calendar months —
 *   what date_trunc gives in UTC) from the first bucket with a response to the last; buckets in
 *   between without responses are listed with nps null and 0 responses. No responses, no points.
 *
 * Performance: two queries, the second only when invitations or responseRate are asked for.
 * (1) survey_responses grouped by UTC day, survey and recorded touchpoint, with the survey and
 * window filters on the scan: a parallel scan of the table without filters, else an index-only scan
 * of a covering index (see the nps-report migration, which also tells the planner how many such
 * groups there are, so that it hash-aggregates); the few thousand groups are mapped to their
 * touchpoint (a join with surveys), filtered and summed per day and touchpoint. Totals, byTouchpoint
 * and the trend of every interval are sums of those rows (a UTC day lies in one UTC week and one
 * month), so trends cost no further query. (2) one count of invitations (npsInvitations), an
 * index-only scan of a covering partial index when a window narrows it. JIT compilation is off for
 * both: at this size it costs more than it saves.
 */

export const LOW_SAMPLE = 30;
export const UNKNOWN_TOUCHPOINT = 'unknown';

export type TrendInterval = 'DAY' | 'WEEK' | 'MONTH';

export interface NpsFilterInput {
  surveyId?: string | null;
  touchpoint?: string | null;
  since?: string | Date | null;
  until?: string | Date | null;
}

/** A validated filter. */
export interface NpsFilter {
  surveyId: string | null;
  touchpoint: string | null;
  since: Date | null;
  until: Date | null;
}

/** Responses of one UTC day and one touchpoint. */
export interface DayRow {
  /** YYYY-MM-DD (UTC) */
  day: string;
  touchpoint: string;
  promoters: number;
  passives: number;
  detractors: number;
}

export interface TouchpointNps {
  touchpoint: string;
  nps: number | null;
  responses: number;
}

export interface NpsPoint {
  /** start of the UTC bucket */
  at: Date;
  nps: number | null;
  responses: number;
}

export interface NpsReport {
  nps: number | null;
  responses: number;
  promoters: number;
  passives: number;
  detractors: number;
  lowSample: boolean;
  byTouchpoint: TouchpointNps[];
  /** what the trend of every interval is summed from */
  days: DayRow[];
  /** what the invitations are counted with (npsInvitations) */
  filter: NpsFilter;
}

/** %promoters − %detractors rounded half away from zero to one decimal; null without responses. */
export function npsScore(promoters: number, detractors: number, responses: number): number | null {
  if (responses === 0) return null;
  const tenths = ((promoters - detractors) * 1000) / responses;
  const rounded = Math.sign(tenths) * Math.round(Math.abs(tenths));
  return rounded / 10 + 0; // + 0 turns -0 into 0
}

function date(value: string | Date | null | undefined, field: string): Date | null {
  if (value === null || value === undefined) return null;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime()) || (typeof value === 'string' && !/^\d{4}-\d{2}-\d{2}T/.test(value))) {
    throw badInput(`${field} must be an ISO-8601 date-time with offset, e.g. 2026-11-27T10:00:00.000Z; got ${JSON.stringify(value)}.`, field);
  }
  return d;
}

/** Validates the report's arguments: dates, since before until, and that the survey exists. */
export async function npsFilter(db: Db, input: NpsFilterInput): Promise<NpsFilter> {
  const since = date(input.since, 'since');
  const until = date(input.until, 'until');
  if (since && until && since.getTime() >= until.getTime()) {
    throw badInput(`since (${since.toISOString()}) must be before until (${until.toISOString()}); the window is [since, until).`, 'since');
  }
  const touchpoint = input.touchpoint?.trim() || null;
  const surveyId = input.surveyId ?? null;
  if (surveyId !== null) {
    const survey = await db.selectFrom('surveys').select('id').where('id', '=', surveyId).executeTakeFirst();
    if (!survey) throw notFound(`No survey has id "${surveyId}"; list them with the surveys query.`);
  }
  return { surveyId, touchpoint, since, until };
}

/** The survey and window conditions, on the scanned table's index key. */
function scanConditions(filter: NpsFilter, timeColumn: 'responded_at' | 'sent_at'): RawBuilder<unknown>[] {
  const time = sql.ref(timeColumn);
  const conditions: RawBuilder<unknown>[] = [];
  if (filter.surveyId !== null) conditions.push(sql`survey_id = ${filter.surveyId}`);
  if (filter.since) conditions.push(sql`${time} >= ${filter.since}`);
  if (filter.until) conditions.push(sql`${time} < ${filter.until}`);
  return conditions;
}

const where = (conditions: RawBuilder<unknown>[]) => (conditions.length ? sql`where ${sql.join(conditions, sql` and `)}` : sql``);

/** The touchpoint a grouped row counts under (g: grouped rows, s: its survey). */
const effectiveTouchpoint = sql`coalesce(g.touchpoint, s.touchpoint, ${sql.lit(UNKNOWN_TOUCHPOINT)})`;

/**
 * Responses per UTC day and touchpoint. The day expression is written out (no parameter) so that it
 * is the one the migration's statistics describe. With a touchpoint filter the scan also keeps only
 * rows recorded with that touchpoint or none (implied by the touchpoint rule). Exported for EXPLAIN.
 */
export function daysQuery(filter: NpsFilter): RawBuilder<DayRow> {
  const conditions = scanConditions(filter, 'responded_at');
  if (filter.touchpoint !== null) conditions.push(sql`(touchpoint = ${filter.touchpoint} or touchpoint is null)`);
  return sql<DayRow>`
    with g as (
      select (responded_at at time zone 'UTC')::date as day, survey_id, touchpoint,
             count(*) filter (where category = 'PROMOTER') as promoters,
             count(*) filter (where category = 'PASSIVE') as passives,
             count(*) filter (where category = 'DETRACTOR') as detractors
        from survey_responses
        ${where(conditions)}
       group by 1, 2, 3
    )
    select g.day::text as day, ${effectiveTouchpoint} as touchpoint,
           sum(g.promoters)::int as promoters, sum(g.passives)::int as passives, sum(g.detractors)::int as detractors
      from g join surveys s on s.id = g.survey_id
      ${filter.touchpoint === null ? sql`` : sql`where ${effectiveTouchpoint} = ${filter.touchpoint}`}
     group by 1, 2
     order by 1, 2`;
}

/** Invitations sent in the window (FAILED ones never were). Exported for EXPLAIN. */
export function invitationsQuery(filter: NpsFilter): RawBuilder<{ invitations: number }> {
  const conditions = [sql`status <> 'FAILED'`, ...scanConditions(filter, 'sent_at')];
  if (filter.touchpoint !== null) {
    conditions.push(sql`(touchpoint = ${filter.touchpoint} or (touchpoint is null and survey_id in (
      select id from surveys where coalesce(touchpoint, ${sql.lit(UNKNOWN_TOUCHPOINT)}) = ${filter.touchpoint})))`);
  }
  return sql<{ invitations: number }>`select count(*)::int as invitations from survey_invitations ${where(conditions)}`;
}

/** responses / invitations rounded to four decimals; 0 without invitations. */
export function responseRate(responses: number, invitations: number): number {
  return invitations === 0 ? 0 : Math.round((responses / invitations) * 10_000) / 10_000;
}

/** Counts, NPS and byTouchpoint from the day rows. */
export function summarize(days: DayRow[], filter: NpsFilter): NpsReport {
  let promoters = 0;
  let passives = 0;
  let detractors = 0;
  const touchpoints = new Map<string, { promoters: number; detractors: number; responses: number }>();
  for (const d of days) {
    promoters += d.promoters;
    passives += d.passives;
    detractors += d.detractors;
    const t = touchpoints.get(d.touchpoint) ?? { promoters: 0, detractors: 0, responses: 0 };
    t.promoters += d.promoters;
    t.detractors += d.detractors;
    t.responses += d.promoters + d.passives + d.detractors;
    touchpoints.set(d.touchpoint, t);
  }
  const responses = promoters + passives + detractors;
  return {
    nps: npsScore(promoters, detractors, responses),
    responses,
    promoters,
    passives,
    detractors,
    lowSample: responses < LOW_SAMPLE,
    byTouchpoint: [...touchpoints.entries()]
      .filter(([, t]) => t.responses > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([touchpoint, t]) => ({ touchpoint, nps: npsScore(t.promoters, t.detractors, t.responses), responses: t.responses })),
    days,
    filter,
  };
}

/** Runs one report query in a transaction of its own with JIT compilation off. */
function run<T>(db: Kysely<Database>, query: RawBuilder<T>): Promise<T[]> {
  return db
    .transaction()
    .setAccessMode('read only')
    .execute(async (trx) => {
      await sql`set local jit = off`.execute(trx);
      return (await query.execute(trx)).rows;
    });
}

/** The report for these arguments but its invitations (npsInvitations) and trend (npsTrend). */
export async function npsReport(db: Kysely<Database>, input: NpsFilterInput): Promise<NpsReport> {
  const filter = await npsFilter(db, input);
  return summarize(await run(db, daysQuery(filter)), filter);
}

/** Invitations sent in the report's window, FAILED ones excluded. */
export async function npsInvitations(db: Kysely<Database>, filter: NpsFilter): Promise<number> {
  const [row] = await run(db, invitationsQuery(filter));
  return row?.invitations ?? 0;
}

const DAY_MS = 86_400_000;

/** Start of the UTC bucket holding this day (YYYY-MM-DD). */
function bucketOf(day: string, interval: TrendInterval): number {
  const t = Date.parse(`${day}T00:00:00.000Z`);
  if (interval === 'DAY') return t;
  const d = new Date(t);
  if (interval === 'MONTH') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return t - ((d.getUTCDay() + 6) % 7) * DAY_MS; // back to Monday
}

function nextBucket(at: number, interval: TrendInterval): number {
  if (interval === 'MONTH') {
    const d = new Date(at);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return at + (interval === 'DAY' ? 1 : 7) * DAY_MS;
}

/** NPS per UTC day, week (from Monday) or month, oldest first, with the empty buckets between. */
export function npsTrend(days: DayRow[], interval: TrendInterval = 'WEEK'): NpsPoint[] {
  if (interval !== 'DAY' && interval !== 'WEEK' && interval !== 'MONTH') {
    throw badInput(`interval must be DAY, WEEK or MONTH; got ${JSON.stringify(interval)}.`, 'interval');
  }
  const buckets = new Map<number, { promoters: number; detractors: number; responses: number }>();
  for (const d of days) {
    const at = bucketOf(d.day, interval);
    const b = buckets.get(at) ?? { promoters: 0, detractors: 0, responses: 0 };
    b.promoters += d.promoters;
    b.detractors += d.detractors;
    b.responses += d.promoters + d.passives + d.detractors;
    buckets.set(at, b);
  }
  const filled = [...buckets.keys()].filter((at) => buckets.get(at)!.responses > 0).sort((a, b) => a - b);
  if (filled.length === 0) return [];
  const points: NpsPoint[] = [];
  for (let at = filled[0]!; at <= filled[filled.length - 1]!; at = nextBucket(at, interval)) {
    const b = buckets.get(at);
    points.push({ at: new Date(at), nps: b ? npsScore(b.promoters, b.detractors, b.responses) : null, responses: b?.responses ?? 0 });
  }
  return points;
}
