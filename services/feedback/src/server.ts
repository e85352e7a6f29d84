import { readFileSync } from 'node:fs';
import gql from 'graphql-tag';
import { consumeContactErasure, createHttpService, createSubgraphApollo, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import type { Database } from './db/database';
import { eraseContact } from './surveys';
import { createResolvers } from './resolvers';

const typeDefs = gql(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));

export function createServer(deps: ServiceDeps<Database>): ServiceInstance {
  const apollo = createSubgraphApollo(typeDefs, createResolvers(deps), deps.logger);
  // Requests wait for this; started here because the kit's HTTP front does not start Apollo.
  apollo.startInBackgroundHandlingStartupErrorsByLoggingAndFailingAllRequests();
  const http = createHttpService({ logger: deps.logger, apollo, internalToken: deps.internalToken, health: deps.healthy });
  let consumers: { stop(): Promise<void> } | undefined;
  return {
    http,
    async start() {
      consumers = consumeContactErasure(deps, eraseContact);
    },
    async stop() {
      await consumers?.stop();
      await apollo.stop();
    },
  };
}
