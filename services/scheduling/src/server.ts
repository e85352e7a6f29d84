import { readFileSync } from 'node:fs';
import gql from 'graphql-tag';
import type { PendingConsumer } from '@textloop/events';
import { ConfigError, consumeContactErasure, createHttpService, createSubgraphApollo, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import type { SchedulingContext } from './context';
import type { Database } from './db/database';
import { eraseContact } from './automations';
import { CampaignRunner, type CampaignRunnerOptions } from './campaign-runner';
import { deliveredTrigger, startConsumers } from './events/consumers';
import type { DeliveredTriggerFeed } from './events/delivered-trigger';
import { createResolvers } from './resolvers';
import { Timers, type TimerOptions } from './timers';

const typeDefs = gql(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));

export interface SchedulingInstance extends ServiceInstance {
  ctx: SchedulingContext;
  timers: Timers;
  campaigns: CampaignRunner;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

export function timerOptions(env: NodeJS.ProcessEnv): TimerOptions & { enabled: boolean } {
  return {
    enabled: !['0', 'false', 'off', 'no'].includes((env.TIMERS_ENABLED ?? '').trim().toLowerCase()),
    batchSize: int(env, 'TIMER_BATCH_SIZE', 500, 1, 10_000),
    maxSleepMs: int(env, 'TIMER_MAX_SLEEP_MS', 5000, 10, 60_000),
  };
}

/**
 * Campaign sending. CAMPAIGN_RATE_PER_SECOND (default 50) is the pace of all campaigns together,
 * over every scheduling instance: 50 messages a second suits a single provider account (a typical
 * long-code/sender throughput limit; raise it for short codes or several accounts). Recipients are
 * claimed CAMPAIGN_BATCH_SIZE (default 100) at most per transaction, and audiences are asked of
 * contacts CAMPAIGN_AUDIENCE_PAGE_SIZE (default 1000, at most 5000) at a time.
 */
export function campaignOptions(env: NodeJS.ProcessEnv): CampaignRunnerOptions & { audiencePageSize: number } {
  return {
    ratePerSecond: int(env, 'CAMPAIGN_RATE_PER_SECOND', 50, 1, 100_000),
    batchSize: int(env, 'CAMPAIGN_BATCH_SIZE', 100, 1, 5000),
    audiencePageSize: int(env, 'CAMPAIGN_AUDIENCE_PAGE_SIZE', 1000, 1, 5000),
    maxSleepMs: int(env, 'TIMER_MAX_SLEEP_MS', 5000, 10, 60_000),
  };
}

export function createServer(deps: ServiceDeps<Database>): SchedulingInstance {
  const options = timerOptions(deps.env);
  const campaignSettings = campaignOptions(deps.env);
  let timers: Timers | undefined;
  let campaigns: CampaignRunner | undefined;
  let delivered: DeliveredTriggerFeed | undefined;
  const ctx: SchedulingContext = {
    db: deps.db,
    clock: deps.clock,
    logger: deps.logger,
    outbox: deps.outbox,
    nats: deps.nats.nc,
    kickTimers: () => timers?.kick(),
    kickCampaigns: () => campaigns?.kick(),
    automationsChanged: () => delivered?.kick(),
    campaigns: { audiencePageSize: campaignSettings.audiencePageSize },
  };
  timers = new Timers(ctx, options);
  campaigns = new CampaignRunner(ctx, campaignSettings);
  const apollo = createSubgraphApollo(typeDefs, createResolvers(ctx), deps.logger);
  // Requests wait for this; started here because the kit's HTTP front does not start Apollo.
  apollo.startInBackgroundHandlingStartupErrorsByLoggingAndFailingAllRequests();
  const http = createHttpService({ logger: deps.logger, apollo, internalToken: deps.internalToken, health: deps.healthy });
  let consumers: PendingConsumer[] = [];
  return {
    http,
    ctx,
    timers,
    campaigns,
    async start() {
      delivered = deliveredTrigger(deps, ctx);
      delivered.start();
      consumers = [consumeContactErasure(deps, (trx, contactId) => eraseContact(trx, contactId, deps.clock.now())), ...startConsumers(deps, ctx), delivered];
      if (options.enabled) {
        timers!.start();
        campaigns!.start();
      }
    },
    async stop() {
      await timers!.stop();
      await campaigns!.stop();
      await Promise.allSettled(consumers.map((c) => c.stop()));
      await apollo.stop();
    },
  };
}
