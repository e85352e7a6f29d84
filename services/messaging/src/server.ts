import { readFileSync } from 'node:fs';
import gql from 'graphql-tag';
import type { RunningConsumer } from '@textloop/events';
import { createHttpService, createSubgraphApollo, type Clock, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { loadConfig, type MessagingConfig } from './config';
import type { MessagingContext } from './context';
import type { Database } from './db/database';
import { DeliveryReports } from './delivery-reports';
import { Dispatcher, type DispatcherHooks } from './dispatcher';
import { startConsumers } from './events/consumers';
import { MoceanProvider } from './providers/mocean';
import type { SmsProvider } from './providers/provider';
import { TemplateRenderer } from './rendering';
import { createResolvers } from './resolvers';
import { serveMessagingRpc } from './rpc';
import { ScheduledRelease } from './scheduled-release';
import { webhookRoutes } from './webhooks';

const typeDefs = gql(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));

export interface MessagingInstance extends ServiceInstance {
  ctx: MessagingContext;
  dispatcher: Dispatcher;
  deliveryReports: DeliveryReports;
  release: ScheduledRelease;
}

export function createProvider(config: MessagingConfig): SmsProvider {
  return new MoceanProvider({ ...config.mocean });
}

/** Options beyond deps, for tests (a provider stand-in, a crash hook, a clock moved by hand). */
export interface MessagingOptions {
  provider?: SmsProvider;
  dispatcherHooks?: DispatcherHooks;
  /** Replaces deps.clock for this instance (tests of quiet hours use a ManualClock). */
  clock?: Clock;
}

export function createServer(deps: ServiceDeps<Database>, options: MessagingOptions = {}): MessagingInstance {
  const config = loadConfig(deps.env);
  if (config.dispatch.leaseMs <= config.mocean.timeoutMs) {
    deps.logger.warn(
      { leaseMs: config.dispatch.leaseMs, timeoutMs: config.mocean.timeoutMs },
      'DISPATCH_LEASE_MS is not longer than PROVIDER_TIMEOUT_MS: a slow send may be retried while still in flight (the provider deduplicates it)',
    );
  }
  const provider = options.provider ?? createProvider(config);
  let dispatcher: Dispatcher | undefined;
  const ctx: MessagingContext = {
    db: deps.db,
    clock: options.clock ?? deps.clock,
    logger: deps.logger,
    outbox: deps.outbox,
    config,
    renderer: new TemplateRenderer(),
    nats: deps.nats.nc,
    kickDispatcher: () => dispatcher?.kick(),
  };
  dispatcher = new Dispatcher(ctx, provider, options.dispatcherHooks);
  const deliveryReports = new DeliveryReports(ctx);
  const release = new ScheduledRelease(ctx);
  const apollo = createSubgraphApollo(typeDefs, createResolvers(ctx, { kickRelease: () => release.kick() }), deps.logger);
  const http = createHttpService({
    logger: deps.logger,
    apollo,
    internalToken: deps.internalToken,
    health: deps.healthy,
    routes: webhookRoutes(ctx, deliveryReports),
  });

  let consumers: Array<Pick<RunningConsumer, 'stop'>> = [];
  let rpc: Array<{ unsubscribe(): void }> = [];
  let apolloStarted = false;
  return {
    http,
    ctx,
    dispatcher,
    deliveryReports,
    release,
    async start() {
      await apollo.start();
      apolloStarted = true;
      consumers = await startConsumers(deps, ctx);
      rpc = serveMessagingRpc(deps.nats.nc, ctx);
      if (config.dispatch.enabled) {
        dispatcher!.start();
        release.start();
      }
    },
    async stop() {
      for (const sub of rpc) sub.unsubscribe();
      await release.stop();
      await dispatcher!.stop();
      await deliveryReports.drain();
      await Promise.allSettled(consumers.map((c) => c.stop()));
      consumers = [];
      if (apolloStarted) await apollo.stop();
      await provider.close();
    },
  };
}
