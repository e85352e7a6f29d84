import type { RequestContext } from '@textloop/service-kit';
import { trackEvent, type TrackEventInput } from '../activity';
import { runDormancySweep } from '../dormancy';
import { apiSource, requireWriter } from './access';
import { toTrackedEvent } from './mappers';
import type { ResolverDeps } from './types';

export function activityResolvers(deps: ResolverDeps) {
  return {
    Mutation: {
      trackEvent: async (_: unknown, args: { input: TrackEventInput }, ctx: RequestContext) => {
        requireWriter(ctx);
        const result = await trackEvent(deps, args.input, apiSource(ctx));
        return toTrackedEvent(result.event, result.contact, result.duplicate);
      },
      runDormancySweep: async (_: unknown, _args: unknown, ctx: RequestContext) => {
        requireWriter(ctx);
        return runDormancySweep(deps, deps.thresholds);
      },
    },
  };
}
