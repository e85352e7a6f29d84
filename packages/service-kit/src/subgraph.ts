import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { DocumentNode } from 'graphql';
import type { Logger } from 'pino';
import { formatErrorFor, type RequestContext } from './http';

/** An Apollo subgraph server with the platform's error policy (no stack traces, coded errors). */
export function createSubgraphApollo(typeDefs: DocumentNode, resolvers: GraphQLResolverMap<RequestContext>, logger: Logger): ApolloServer<RequestContext> {
  return new ApolloServer<RequestContext>({
    schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
    includeStacktraceInErrorResponses: false,
    formatError: formatErrorFor(logger),
    csrfPrevention: false,
    // runService owns SIGINT/SIGTERM so it can stop workers and close the database in order.
    stopOnTerminationSignals: false,
    logger,
    // Federated tracing is for Apollo's hosted studio, which a self-hosted gateway never asks for.
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
}
