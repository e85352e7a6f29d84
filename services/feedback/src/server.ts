import { readFileSync } from 'node:fs';
import gql from 'graphql-tag';
import { consumeContactErasure, createHttpService, createSubgraphApollo, type ServiceDeps, type ServiceInstance } from '@textloop/service-kit';
import type { Database } from './db/database';
import { eraseContact } from './surveys';
import { createResolvers } from './resolvers';
import { consumeQuestionStatus, consumeReplies, consumeSurveyCommands } from './events/consumers';
import { ExpirySweep } from './invitations';
import { serveFeedbackRpc } from './rpc';

const typeDefs = gql(readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'));

export function createServer(deps: ServiceDeps<Database>): ServiceInstance {
  const apollo = createSubgraphApollo(typeDefs, createResolvers(deps), deps.logger);
  // Requests wait for this; started here because the kit's HTTP front does not start Apollo.
  apollo.startInBackgroundHandlingStartupErrorsByLoggingAndFailingAllRequests();
  const http = createHttpService({ logger: deps.logger, apollo, internalToken: deps.internalToken, health: deps.healthy });
  let consumers: Array<{ stop(): Promise<void> }> = [];
  let rpc: Array<{ unsubscribe(): void }> = [];
  const sweep = new ExpirySweep(deps);
  return {
    http,
    async start() {
      consumers = [
        consumeContactErasure(deps, (trx, contactId) => eraseContact(trx, contactId, deps.clock.now())),
        await consumeSurveyCommands(deps),
        consumeReplies(deps),
        consumeQuestionStatus(deps),
      ];
      rpc = serveFeedbackRpc(deps);
      sweep.start();
    },
    async stop() {
      for (const sub of rpc) sub.unsubscribe();
      await sweep.stop();
      await Promise.allSettled(consumers.map((c) => c.stop()));
      await apollo.stop();
    },
  };
}
