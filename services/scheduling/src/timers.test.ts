import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { waitFor } from '@textloop/service-kit/testing';
import { startEnv, type Env, type Instance } from './test-support';

const HOUR = 3_600_000;
const MINUTE = 60_000;

function worldWithTemplates(env: Env): void {
  env.world.templates.set('bulk-first', { category: 'TRANSACTIONAL', variables: [] });
  env.world.templates.set('bulk-second', { category: 'TRANSACTIONAL', variables: [] });
  env.world.surveys.set('survey-bulk', 'Bulk NPS');
}

async function createAutomation(instance: Instance, input: Record<string, unknown>): Promise<string> {
  const res = await instance.gql('mutation($input: AutomationInput!) { createAutomation(input: $input) { id } }', { input });
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data.createAutomation.id;
}

async function count(db: Instance['deps']['db'], query: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  return (await query.execute(db)).rows[0]!.n;
}

/** requestIds of every command scheduling sent, with how often each was sent. */
function commandCounts(env: Env): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of env.recorded) {
    if (!['messaging.cmd.send', 'messaging.cmd.verify', 'feedback.cmd.send_survey'].includes(e.subject)) continue;
    counts.set(e.event.data.requestId, (counts.get(e.event.data.requestId) ?? 0) + 1);
  }
  return counts;
}

describe('two scheduling instances on one database', () => {
  let env: Env;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    env = await startEnv('sched_timers_pair');
    worldWithTemplates(env);
    // Small batches, so the two instances claim the 300 due steps in many interleaved transactions.
    a = await env.start({ TIMER_BATCH_SIZE: '10' });
    b = await env.start({ TIMER_BATCH_SIZE: '10' });
  });

  afterAll(async () => {
    await env?.close();
  });

  it('fires each of 300 steps due at the same time exactly once, and completes every run', async () => {
    // 100 runs × 3 steps, all due one hour after the trigger: two messages and a survey.
    const automationId = await createAutomation(a, {
      name: 'Bulk',
      triggerEvent: 'bulk.tick',
      steps: [
        { type: 'SEND_MESSAGE', template: 'bulk-first', delay: 'PT1H' },
        { type: 'SEND_MESSAGE', template: 'bulk-second' },
        { type: 'SEND_SURVEY', surveyId: 'survey-bulk' },
      ],
    });
    const contacts = Array.from({ length: 100 }, (_, i) => `contact-bulk-${i}`);
    for (const contactId of contacts) await env.track('bulk.tick', contactId, {});
    await env.handled('EVENTS', 'scheduling-events');
    const steps = sql<{ n: number }>`select count(*)::int as n from scheduled_steps where status = 'PENDING'`;
    expect(await count(a.deps.db, steps)).toBe(300);
    expect(await a.server.timers.fireSteps(1000)).toBe(0);

    env.clock.advance(HOUR);
    a.server.timers.kick();
    b.server.timers.kick();
    await waitFor(() => commandCounts(env).size >= 300, { what: '300 commands', timeoutMs: 30_000 });
    await env.settle(a.deps.db);

    const counts = commandCounts(env);
    expect(counts.size).toBe(300);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(env.of('messaging.cmd.send')).toHaveLength(200);
    expect(env.of('feedback.cmd.send_survey')).toHaveLength(100);
    const stepIds = (await a.deps.db.selectFrom('scheduled_steps').select(['id', 'status']).execute()).map((s) => [s.id, s.status]);
    expect(new Set(stepIds.map(([id]) => id))).toEqual(new Set(counts.keys()));
    expect(stepIds.filter(([, status]) => status !== 'DONE')).toEqual([]);
    // Both instances took part, and between them fired each step once.
    expect(a.server.timers.stats.steps).toBeGreaterThan(0);
    expect(b.server.timers.stats.steps).toBeGreaterThan(0);
    expect(a.server.timers.stats.steps + b.server.timers.stats.steps).toBe(300);
    // Each run completes once, even when its steps were fired by different instances at the same time.
    const runs = await a.deps.db.selectFrom('automation_runs').select(['id', 'status']).where('automation_id', '=', automationId).execute();
    expect(runs.filter((r) => r.status !== 'COMPLETED')).toEqual([]);
    const completed = env.of('scheduling.run.completed').map((e) => e.event.data.runId);
    expect(completed.sort()).toEqual(runs.map((r) => r.id).sort());
  });
});

describe('restart', () => {
  let env: Env;

  beforeAll(async () => {
    env = await startEnv('sched_timers_restart');
    worldWithTemplates(env);
  });

  afterAll(async () => {
    await env?.close();
  });

  it('fires every step once across a restart, including commands committed but not yet published', async () => {
    const first = await env.start();
    await createAutomation(first, {
      name: 'Two reminders',
      triggerEvent: 'restart.tick',
      steps: [
        { type: 'SEND_MESSAGE', template: 'bulk-first', delay: 'PT10M' },
        { type: 'SEND_MESSAGE', template: 'bulk-second', delay: 'PT10M' },
      ],
    });
    for (let i = 0; i < 20; i++) await env.track('restart.tick', `contact-restart-${i}`, { i });
    await env.handled('EVENTS', 'scheduling-events');

    // The first steps fire, but the process dies before its outbox relay publishes them.
    await first.deps.outbox.stop();
    env.clock.advance(10 * MINUTE);
    first.server.timers.kick();
    const done = sql<{ n: number }>`select count(*)::int as n from scheduled_steps where status = 'DONE'`;
    await waitFor(async () => (await count(first.deps.db, done)) === 20, { what: 'the first steps to fire' });
    expect(await count(first.deps.db, sql<{ n: number }>`select count(*)::int as n from outbox where subject = 'messaging.cmd.send'`)).toBe(20);
    await first.stop();
    expect(commandCounts(env).size).toBe(0);

    // Down while the second steps come due.
    env.clock.advance(15 * MINUTE);
    const second = await env.start();
    await waitFor(() => commandCounts(env).size >= 40, { what: '40 commands after the restart' });
    await env.settle(second.deps.db);
    const counts = commandCounts(env);
    expect(counts.size).toBe(40);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    const steps = await second.deps.db.selectFrom('scheduled_steps').select(['id', 'status']).execute();
    expect(steps.filter((s) => s.status !== 'DONE')).toEqual([]);
    expect(new Set(steps.map((s) => s.id))).toEqual(new Set(counts.keys()));
    const runs = await second.deps.db.selectFrom('automation_runs').select('status').execute();
    expect(runs.map((r) => r.status)).toEqual(Array(20).fill('COMPLETED'));
  });
});
