import type { createSubgraphApollo } from '@textloop/service-kit';
import { activityResolvers } from './activity';
import { contactResolvers } from './contact';
import { DateTime, JSONScalar } from './scalars';
import type { ResolverDeps } from './types';

export type ResolverMap = Parameters<typeof createSubgraphApollo>[1];
export type { ResolverDeps };

export function createResolvers(deps: ResolverDeps): ResolverMap {
  const contacts = contactResolvers(deps);
  const activity = activityResolvers(deps);
  return {
    DateTime,
    JSON: JSONScalar,
    Query: contacts.Query,
    Mutation: { ...contacts.Mutation, ...activity.Mutation },
    Contact: contacts.Contact,
  };
}
