import { readFileSync } from 'node:fs';
import gql from 'graphql-tag';
import { createHttpService, createSubgraphApollo, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import { createContactLoader } from './contacts';
import type { Database } from './db/database';
import { DormancySweeper, parseSweepInterval, parseThresholds } from './dormancy';
import { Consumers } from './events/consumers';
import { createResolvers } from './resolvers';
import { serveContactsRpc } from './rpc';

const typeDefs = gql(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));

export function createServer(deps: ServiceDeps<Database>): ServiceInstance {
  const thresholds = parseThresholds(deps.env.DORMANCY_THRESHOLDS);
  const sweepIntervalMs = parseSweepInterval(deps.env.DORMANCY_SWEEP_INTERVAL_MS);
  const resolvers = createResolvers({ ...deps, thresholds, loadContact: createContactLoader(deps.db) });
  const apollo = createSubgraphApollo(typeDefs, resolvers, deps.logger);
  // In the background so /graphql works as soon as the kit listens; this also keeps Apollo from
  // installing its own SIGINT/SIGTERM handlers, which would exit before runService's clean shutdown.
  apollo.startInBackgroundHandlingStartupErrorsByLoggingAndFailingAllRequests();
  const http = createHttpService({ logger: deps.logger, apollo, internalToken: deps.internalToken, health: deps.healthy });
  const consumers = new Consumers(deps);
  const sweeper = new DormancySweeper(deps, thresholds, sweepIntervalMs);
  let rpc: Array<{ unsubscribe(): void }> = [];
  return {
    http,
    async start() {
      consumers.start();
      sweeper.start();
      rpc = serveContactsRpc(deps);
    },
    async stop() {
      for (const sub of rpc) sub.unsubscribe();
      await sweeper.stop();
      await consumers.stop();
      await apollo.stop();
    },
  };
}
