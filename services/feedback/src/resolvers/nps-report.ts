import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { npsInvitations, npsReport, npsTrend, responseRate, type NpsFilterInput, type NpsPoint, type NpsReport, type TrendInterval } from '../nps-report';

const toPoint = (p: NpsPoint) => ({ at: p.at.toISOString(), nps: p.nps, responses: p.responses });

/**
 * Query.npsReport and the NpsReport fields that cost more: invitations and responseRate share one
 * count, made only when either is asked for; trend is summed from the report's days (no query).
 */
export function npsReportResolvers(deps: ServiceDeps<Database>) {
  const counted = new WeakMap<NpsReport, Promise<number>>();
  const invitations = (report: NpsReport) => {
    let count = counted.get(report);
    if (!count) {
      count = npsInvitations(deps.db, report.filter);
      counted.set(report, count);
    }
    return count;
  };
  return {
    Query: {
      npsReport: (_: unknown, args: NpsFilterInput) => npsReport(deps.db, args),
    },
    NpsReport: {
      invitations: (report: NpsReport) => invitations(report),
      responseRate: async (report: NpsReport) => responseRate(report.responses, await invitations(report)),
      trend: (report: NpsReport, args: { interval?: TrendInterval | null }) => npsTrend(report.days, args.interval ?? 'WEEK').map(toPoint),
    },
  };
}
