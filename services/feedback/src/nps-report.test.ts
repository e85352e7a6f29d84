import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '@textloop/events';
import { buildDeps, ManualClock, silentLogger, type ServiceDeps } from '@textloop/service-kit';
import { createTestDatabase, startTestNats, type TestNats } from '@textloop/service-kit/testing';
import type { Database } from './db/database';
import { migrations } from './db/migrations';
import { npsCategory } from './nps';
import { npsScore, npsTrend, type DayRow } from './nps-report';
import { createServer } from './server';

let nats: TestNats;
let database: { url: string; drop(): Promise<void> };
let deps: ServiceDeps<Database> & { close(): Promise<void> };
let http: { close(): Promise<void> } | undefined;
let stopApollo: (() => Promise<void>) | undefined;
let url: string;

type Result = { data?: any; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };

async function graphql(query: string, variables: Record<string, unknown> = {}): Promise<Result> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as Result;
}

const REPORT = `query($s: ID, $t: String, $since: DateTime, $until: DateTime) {
  npsReport(surveyId: $s, touchpoint: $t, since: $since, until: $until) {
    nps responses promoters passives detractors invitations responseRate lowSample
    byTouchpoint { touchpoint nps responses }
    day: trend(interval: DAY) { at nps responses }
    week: trend { at nps responses }
    month: trend(interval: MONTH) { at nps responses }
  }
}`;

async function report(args: { s?: string; t?: string; since?: string; until?: string } = {}) {
  const res = await graphql(REPORT, args);
  expect(res.errors).toBeUndefined();
  return res.data.npsReport;
}

beforeAll(async () => {
  nats = await startTestNats();
  database = await createTestDatabase('feedback_nps');
  deps = await buildDeps<Database>({
    name: 'feedback',
    migrations,
    streams: ['FEEDBACK'],
    target: { kind: 'postgres', url: database.url },
    natsUrl: nats.url,
    logger: silentLogger,
    clock: new ManualClock('2026-12-15T10:00:00.000Z'),
  });
  // Only the GraphQL front: the report needs no consumers.
  const instance = createServer(deps);
  ({ url } = await instance.http.listen(0));
  http = instance.http;
  stopApollo = () => instance.stop();
});

afterAll(async () => {
  await http?.close();
  await stopApollo?.();
  await deps?.close();
  await database?.drop();
  await nats?.stop();
});

async function survey(name: string, touchpoint: string | null): Promise<string> {
  const id = newId();
  await deps.db
    .insertInto('surveys')
    .values({ id, name, question: 'How likely are you to recommend us? Reply 0-10', follow_up: null, thank_you: null, touchpoint, response_window: 'P3D' })
    .execute();
  return id;
}

const HOUR = 3_600_000;

async function invitation(surveyId: string, sentAt: string | Date, touchpoint: string | null, status: 'SENT' | 'COMPLETED' | 'EXPIRED' | 'FAILED' = 'EXPIRED') {
  const id = newId();
  const sent = new Date(sentAt);
  await deps.db
    .insertInto('survey_invitations')
    .values({ id, survey_id: surveyId, contact_id: newId(), status, touchpoint, sent_at: sent, expires_at: new Date(sent.getTime() + 72 * HOUR) })
    .execute();
  return id;
}

/** A response and its invitation, sent an hour before it. */
async function response(surveyId: string, score: number, respondedAt: string, touchpoint: string | null, options: { erased?: boolean } = {}) {
  const invitationId = await invitation(surveyId, new Date(new Date(respondedAt).getTime() - HOUR), touchpoint, 'COMPLETED');
  await deps.db
    .insertInto('survey_responses')
    .values({
      id: newId(),
      survey_id: surveyId,
      invitation_id: invitationId,
      contact_id: options.erased ? null : newId(),
      score,
      category: npsCategory(score),
      touchpoint,
      comment: null,
      responded_at: respondedAt,
    })
    .execute();
}

const EMPTY = {
  nps: null,
  responses: 0,
  promoters: 0,
  passives: 0,
  detractors: 0,
  invitations: 0,
  responseRate: 0,
  lowSample: true,
  byTouchpoint: [],
  day: [],
  week: [],
  month: [],
};

describe('npsScore', () => {
  it('is %promoters − %detractors rounded half away from zero to one decimal, null without responses', () => {
    expect(npsScore(5, 3, 10)).toBe(20);
    expect(npsScore(1, 0, 3)).toBe(33.3);
    expect(npsScore(2, 0, 3)).toBe(66.7);
    expect(npsScore(0, 1, 3)).toBe(-33.3);
    expect(npsScore(1, 0, 16)).toBe(6.3);
    expect(npsScore(0, 1, 16)).toBe(-6.3);
    expect(npsScore(3, 3, 7)).toBe(0);
    expect(Object.is(npsScore(0, 0, 4), 0)).toBe(true);
    expect(npsScore(4, 0, 4)).toBe(100);
    expect(npsScore(0, 2, 2)).toBe(-100);
    expect(npsScore(0, 0, 0)).toBeNull();
  });
});

describe('npsTrend', () => {
  const day = (d: string, promoters: number, passives: number, detractors: number, touchpoint = 'purchase'): DayRow => ({
    day: d,
    touchpoint,
    promoters,
    passives,
    detractors,
  });
  const days = [
    day('2026-12-27', 1, 0, 0),
    day('2026-12-28', 0, 0, 1),
    day('2026-12-31', 1, 1, 0, 'support'),
    day('2027-01-01', 2, 0, 1),
    day('2027-03-01', 0, 1, 0),
  ];

  it('sums days into UTC weeks from Monday, across a year end, with the empty weeks between', () => {
    const weeks = npsTrend(days, 'WEEK');
    expect(weeks.slice(0, 2).map((p) => [p.at.toISOString(), p.nps, p.responses])).toEqual([
      ['2026-12-21T00:00:00.000Z', 100, 1], // Sunday Dec 27
      ['2026-12-28T00:00:00.000Z', 16.7, 6], // Mon Dec 28 … Fri Jan 1: 3 promoters, 1 passive, 2 detractors → 1/6
    ]);
    expect(weeks[weeks.length - 1]).toEqual({ at: new Date('2027-03-01T00:00:00.000Z'), nps: 0, responses: 1 });
    expect(weeks).toHaveLength(11); // Dec 21 … Mar 1
    expect(weeks.slice(2, -1).every((p) => p.nps === null && p.responses === 0)).toBe(true);
  });

  it('sums days into calendar months and lists each day', () => {
    expect(npsTrend(days, 'MONTH').map((p) => [p.at.toISOString(), p.nps, p.responses])).toEqual([
      ['2026-12-01T00:00:00.000Z', 25, 4],
      ['2027-01-01T00:00:00.000Z', 33.3, 3],
      ['2027-02-01T00:00:00.000Z', null, 0],
      ['2027-03-01T00:00:00.000Z', 0, 1],
    ]);
    const daily = npsTrend(days, 'DAY');
    expect(daily).toHaveLength(65); // Dec 27 … Mar 1
    expect(daily[4]).toEqual({ at: new Date('2026-12-31T00:00:00.000Z'), nps: 50, responses: 2 });
    expect(npsTrend([], 'DAY')).toEqual([]);
  });
});

describe('npsReport', () => {
  let purchase: string;
  let support: string;

  it('is empty with no responses: nps null, zero counts, no trend', async () => {
    expect(await report()).toEqual(EMPTY);
  });

  it('matches a hand-computed set across two touchpoints: counts, NPS, response rate, byTouchpoint and trends', async () => {
    purchase = await survey('Post-purchase NPS', 'purchase');
    support = await survey('Support NPS', 'support');
    // purchase: 10 9 9 7 3 → 3 promoters, 1 passive, 1 detractor → NPS 40.0 (the 7 was recorded without a touchpoint: it counts under its survey's)
    await response(purchase, 10, '2026-11-02T08:00:00.000Z', 'purchase');
    await response(purchase, 9, '2026-11-04T23:59:00.000Z', 'purchase');
    await response(purchase, 9, '2026-11-08T23:30:00.000Z', 'purchase');
    await response(purchase, 7, '2026-11-09T00:00:00.000Z', null);
    await response(purchase, 3, '2026-12-01T00:00:00.000Z', 'purchase');
    // support: 10 9 8 6 0 → 2 promoters, 1 passive, 2 detractors → NPS 0.0 (the 0 is an erased contact's: it still counts)
    await response(support, 10, '2026-10-31T23:59:59.000Z', 'support');
    await response(support, 9, '2026-11-02T12:00:00.000Z', 'support');
    await response(support, 8, '2026-11-10T00:00:00.000Z', 'support');
    await response(support, 6, '2026-11-10T15:00:00.000Z', 'support');
    await response(support, 0, '2026-12-01T10:00:00.000Z', 'support', { erased: true });
    // Unanswered invitations: purchase 3 (+1 FAILED, never sent, not counted), support 7.
    for (const at of ['2026-11-05T10:00:00.000Z', '2026-11-20T10:00:00.000Z', '2026-11-25T10:00:00.000Z']) await invitation(purchase, at, 'purchase');
    await invitation(purchase, '2026-11-05T11:00:00.000Z', 'purchase', 'FAILED');
    for (let i = 0; i < 3; i++) await invitation(support, '2026-11-03T10:00:00.000Z', 'support');
    for (let i = 0; i < 4; i++) await invitation(support, '2026-11-12T10:00:00.000Z', 'support', 'SENT');

    const all = await report();
    // 10 responses: 5 promoters, 2 passives, 3 detractors → 50% − 30% = 20.0; 10 of 20 invitations.
    expect(all).toMatchObject({ nps: 20, responses: 10, promoters: 5, passives: 2, detractors: 3, invitations: 20, responseRate: 0.5, lowSample: true });
    expect(all.byTouchpoint).toEqual([
      { touchpoint: 'purchase', nps: 40, responses: 5 },
      { touchpoint: 'support', nps: 0, responses: 5 },
    ]);
    // Weeks start on Monday 00:00 UTC; the empty weeks between are listed with nps null.
    expect(all.week).toEqual([
      { at: '2026-10-26T00:00:00.000Z', nps: 100, responses: 1 }, // support 10 (Saturday Oct 31)
      { at: '2026-11-02T00:00:00.000Z', nps: 100, responses: 4 }, // 10 9 9 (Mon, Wed, Sun 23:30) + 9
      { at: '2026-11-09T00:00:00.000Z', nps: -33.3, responses: 3 }, // 7 (Mon 00:00) 8 6 → (0 − 1) / 3
      { at: '2026-11-16T00:00:00.000Z', nps: null, responses: 0 },
      { at: '2026-11-23T00:00:00.000Z', nps: null, responses: 0 },
      { at: '2026-11-30T00:00:00.000Z', nps: -100, responses: 2 }, // 3 0
    ]);
    expect(all.month).toEqual([
      { at: '2026-10-01T00:00:00.000Z', nps: 100, responses: 1 },
      { at: '2026-11-01T00:00:00.000Z', nps: 42.9, responses: 7 }, // 4 promoters, 2 passives, 1 detractor → 3 / 7
      { at: '2026-12-01T00:00:00.000Z', nps: -100, responses: 2 },
    ]);
    // Every day from Oct 31 to Dec 1.
    expect(all.day).toHaveLength(32);
    expect(all.day[0]).toEqual({ at: '2026-10-31T00:00:00.000Z', nps: 100, responses: 1 });
    expect(all.day[1]).toEqual({ at: '2026-11-01T00:00:00.000Z', nps: null, responses: 0 });
    expect(all.day[2]).toEqual({ at: '2026-11-02T00:00:00.000Z', nps: 100, responses: 2 });
    expect(all.day[10]).toEqual({ at: '2026-11-10T00:00:00.000Z', nps: -50, responses: 2 }); // 8 and 6
    expect(all.day[31]).toEqual({ at: '2026-12-01T00:00:00.000Z', nps: -100, responses: 2 });
    expect(all.day.reduce((n: number, p: { responses: number }) => n + p.responses, 0)).toBe(10);
  });

  it('filters by survey and by touchpoint (a response without one under its survey’s)', async () => {
    const byTouchpoint = await report({ t: 'purchase' });
    expect(byTouchpoint).toMatchObject({ nps: 40, responses: 5, promoters: 3, passives: 1, detractors: 1, invitations: 8, responseRate: 0.625 });
    expect(byTouchpoint.byTouchpoint).toEqual([{ touchpoint: 'purchase', nps: 40, responses: 5 }]);
    expect(byTouchpoint.week.map((p: { responses: number }) => p.responses)).toEqual([3, 1, 0, 0, 1]);
    expect(byTouchpoint.month).toEqual([
      { at: '2026-11-01T00:00:00.000Z', nps: 75, responses: 4 },
      { at: '2026-12-01T00:00:00.000Z', nps: -100, responses: 1 },
    ]);

    const bySurvey = await report({ s: support });
    // 5 of 12 invitations → 0.4167
    expect(bySurvey).toMatchObject({ nps: 0, responses: 5, promoters: 2, passives: 1, detractors: 2, invitations: 12, responseRate: 0.4167 });
    expect(bySurvey.byTouchpoint).toEqual([{ touchpoint: 'support', nps: 0, responses: 5 }]);
    expect(await report({ s: purchase, t: 'purchase' })).toMatchObject({ nps: 40, responses: 5, invitations: 8 });
    expect(await report({ s: support, t: 'purchase' })).toEqual(EMPTY);
    expect(await report({ t: 'delivery' })).toEqual(EMPTY);
  });

  it('counts responses in [since, until) by respondedAt and invitations by when they were sent', async () => {
    const week = await report({ since: '2026-11-02T00:00:00.000Z', until: '2026-11-10T00:00:00.000Z' });
    // 10 9 9 7 + 9; the 8 at exactly until is out, so is the 10 of Oct 31.
    // Invitations sent in it: purchase 4 answered + 1 unanswered; support 1 answered (Nov 2) + 3 (Nov 3) + the 8's (Nov 9 23:00).
    expect(week).toMatchObject({ nps: 80, responses: 5, promoters: 4, passives: 1, detractors: 0, invitations: 10, responseRate: 0.5, lowSample: true });
    expect(week.byTouchpoint).toEqual([
      { touchpoint: 'purchase', nps: 75, responses: 4 },
      { touchpoint: 'support', nps: 100, responses: 1 },
    ]);
    expect(week.week).toEqual([
      { at: '2026-11-02T00:00:00.000Z', nps: 100, responses: 4 },
      { at: '2026-11-09T00:00:00.000Z', nps: 0, responses: 1 },
    ]);
    // since is inclusive: exactly the 7 of Monday 00:00.
    const monday = await report({ since: '2026-11-09T00:00:00.000Z', until: '2026-11-10T00:00:00.000Z' });
    expect(monday).toMatchObject({ nps: 0, responses: 1, passives: 1 });
    expect(monday.day).toEqual([{ at: '2026-11-09T00:00:00.000Z', nps: 0, responses: 1 }]);
    // Only one bound.
    // The 0's invitation went out on Dec 1, the 3's on Nov 30: counted each by its own time, the rate can exceed 1 at the edges.
    expect(await report({ since: '2026-12-01T00:00:00.000Z' })).toMatchObject({ nps: -100, responses: 2, detractors: 2, invitations: 1, responseRate: 2 });
    expect(await report({ until: '2026-11-01T00:00:00.000Z' })).toMatchObject({ nps: 100, responses: 1, invitations: 1, responseRate: 1 });
    expect(await report({ since: '2027-01-01T00:00:00.000Z' })).toEqual(EMPTY);
  });

  it('groups responses of a survey without a touchpoint under "unknown"; 30 responses are not a low sample', async () => {
    const general = await survey('General NPS', null);
    for (let i = 0; i < 30; i++)
      await response(general, i % 3 === 0 ? 10 : i % 3 === 1 ? 8 : 5, `2025-06-${String(1 + (i % 28)).padStart(2, '0')}T12:00:00.000Z`, null);
    const unknown = await report({ s: general });
    expect(unknown).toMatchObject({ nps: 0, responses: 30, promoters: 10, passives: 10, detractors: 10, invitations: 30, responseRate: 1, lowSample: false });
    expect(unknown.byTouchpoint).toEqual([{ touchpoint: 'unknown', nps: 0, responses: 30 }]);
    expect(unknown.month).toEqual([{ at: '2025-06-01T00:00:00.000Z', nps: 0, responses: 30 }]);
    expect(await report({ t: 'unknown' })).toMatchObject({ responses: 30, invitations: 30 });
    const all = await report();
    expect(all).toMatchObject({ responses: 40, lowSample: false, invitations: 50 });
    expect(all.byTouchpoint.map((t: { touchpoint: string }) => t.touchpoint)).toEqual(['purchase', 'support', 'unknown']);
    // Blank touchpoint means every touchpoint.
    expect((await report({ t: '  ' })).responses).toBe(40);
  });

  it('refuses since not before until and a malformed date (BAD_USER_INPUT), an unknown survey (NOT_FOUND)', async () => {
    for (const args of [
      { since: '2026-11-10T00:00:00.000Z', until: '2026-11-10T00:00:00.000Z' },
      { since: '2026-11-11T00:00:00.000Z', until: '2026-11-10T00:00:00.000Z' },
    ]) {
      const res = await graphql(REPORT, args);
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'since' });
    }
    const bad = await graphql(REPORT, { until: 'yesterday' });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    const unknown = await graphql(REPORT, { s: newId() });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
