import type { SchedulingContext } from '../context';
import { campaignStats, cancelCampaign, createCampaign, findCampaign, launchCampaign, listCampaigns, type CampaignInput, type CampaignRow } from '../campaigns';

export function campaignShape(row: CampaignRow) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    template: row.template,
    category: row.category,
    sendAt: row.send_at?.toISOString() ?? null,
    audience: row.audience,
    offer: row.offer,
    warnings: row.warnings ?? [],
    error: row.resolve_error,
    launchedAt: row.launched_at?.toISOString() ?? null,
    finishedAt: (row.completed_at ?? row.canceled_at)?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}

export function campaignResolvers(ctx: SchedulingContext) {
  return {
    Query: {
      campaign: async (_: unknown, args: { id: string }) => {
        const row = await findCampaign(ctx.db, args.id);
        return row ? campaignShape(row) : null;
      },
      campaigns: async () => (await listCampaigns(ctx.db)).map(campaignShape),
    },
    Mutation: {
      createCampaign: async (_: unknown, args: { input: CampaignInput }) => campaignShape(await createCampaign(ctx, args.input)),
      launchCampaign: async (_: unknown, args: { id: string }) => campaignShape(await launchCampaign(ctx, args.id)),
      cancelCampaign: async (_: unknown, args: { id: string }) => campaignShape(await cancelCampaign(ctx, args.id)),
    },
    Campaign: {
      stats: (campaign: ReturnType<typeof campaignShape>) => campaignStats(ctx.db, campaign.id),
    },
  };
}
