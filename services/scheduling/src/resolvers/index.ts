import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { RequestContext } from '@textloop/service-kit';
import {
  createAutomation,
  findAutomation,
  listAutomations,
  listRuns,
  setAutomationEnabled,
  stepsOfRun,
  type AutomationInput,
  type AutomationRow,
  type RunRow,
  type StepRow,
} from '../automations';
import type { SchedulingContext } from '../context';
import type { RunStatus } from '../db/database';
import { automationOfferStats } from '../offers';
import { campaignResolvers } from './campaigns';
import { cancelScheduledMessage, findScheduledMessage, scheduleMessage, type ScheduledMessageRow, type ScheduleMessageInput } from '../scheduled-messages';

function automationShape(row: AutomationRow) {
  return {
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    triggerEvent: row.trigger_event,
    triggerFilter: row.trigger_filter,
    runKey: row.run_key,
    cancelOn: row.cancel_on,
    steps: row.steps,
    warnings: row.warnings ?? [],
    createdAt: row.created_at.toISOString(),
  };
}

function runShape(row: RunRow) {
  return {
    id: row.id,
    automationId: row.automation_id,
    contact: { __typename: 'Contact', id: row.contact_id },
    status: row.status,
    key: row.run_key,
    failure: row.failure,
    triggerEvent: row.trigger_name,
    triggerProperties: row.trigger_properties,
    createdAt: row.created_at.toISOString(),
  };
}

function stepShape(row: StepRow) {
  return {
    index: row.step_index,
    type: row.type,
    dueAt: row.due_at.toISOString(),
    status: row.status,
    message: row.message_id ? { __typename: 'Message', id: row.message_id } : null,
    executedAt: row.executed_at?.toISOString() ?? null,
    error: row.error,
  };
}

function scheduledMessageShape(row: ScheduledMessageRow) {
  return {
    id: row.id,
    contact: row.contact_id ? { __typename: 'Contact', id: row.contact_id } : null,
    to: row.to_number,
    sendAt: row.send_at.toISOString(),
    status: row.status,
    message: row.message_id ? { __typename: 'Message', id: row.message_id } : null,
    error: row.error,
    createdAt: row.created_at.toISOString(),
  };
}

export function createResolvers(ctx: SchedulingContext): GraphQLResolverMap<RequestContext> {
  const campaigns = campaignResolvers(ctx);
  return {
    Query: {
      ...campaigns.Query,
      automation: async (_: unknown, args: { id: string }) => {
        const row = await findAutomation(ctx.db, args.id);
        return row ? automationShape(row) : null;
      },
      automations: async () => (await listAutomations(ctx.db)).map(automationShape),
      automationRuns: async (_: unknown, args: { automationId?: string | null; contactId?: string | null; status?: RunStatus | null }) =>
        (await listRuns(ctx.db, args)).map(runShape),
      scheduledMessage: async (_: unknown, args: { id: string }) => {
        const row = await findScheduledMessage(ctx, args.id);
        return row ? scheduledMessageShape(row) : null;
      },
    },
    Mutation: {
      ...campaigns.Mutation,
      createAutomation: async (_: unknown, args: { input: AutomationInput }) => automationShape(await createAutomation(ctx, args.input)),
      setAutomationEnabled: async (_: unknown, args: { id: string; enabled: boolean }) =>
        automationShape(await setAutomationEnabled(ctx, args.id, args.enabled)),
      scheduleMessage: async (_: unknown, args: { input: ScheduleMessageInput }) => scheduledMessageShape(await scheduleMessage(ctx, args.input)),
      cancelScheduledMessage: async (_: unknown, args: { id: string }) => scheduledMessageShape(await cancelScheduledMessage(ctx, args.id)),
    },
    Campaign: campaigns.Campaign,
    Automation: {
      offerStats: (automation: ReturnType<typeof automationShape>) => automationOfferStats(ctx.db, automation.id),
    },
    Contact: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      automationRuns: async (contact: { id: string }) => (await listRuns(ctx.db, { contactId: contact.id })).map(runShape),
    },
    AutomationRun: {
      automation: async (run: ReturnType<typeof runShape>) => {
        const row = await findAutomation(ctx.db, run.automationId);
        // Runs cascade with their automation, so this holds unless a delete races the read.
        if (!row) throw new Error(`automation ${run.automationId} of run ${run.id} is gone`);
        return automationShape(row);
      },
      steps: async (run: ReturnType<typeof runShape>) => (await stepsOfRun(ctx.db, run.id)).map(stepShape),
    },
  };
}
