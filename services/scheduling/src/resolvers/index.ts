import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { RequestContext, ServiceDeps } from '@textloop/service-kit';
import { findAutomation, listAutomations, listRuns, stepsOfRun, type AutomationRow, type RunRow, type StepRow } from '../automations';
import type { Database, RunStatus } from '../db/database';

type Deps = ServiceDeps<Database>;

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
  };
}

export function createResolvers(deps: Deps): GraphQLResolverMap<RequestContext> {
  return {
    Query: {
      automation: async (_: unknown, args: { id: string }) => {
        const row = await findAutomation(deps.db, args.id);
        return row ? automationShape(row) : null;
      },
      automations: async () => (await listAutomations(deps.db)).map(automationShape),
      automationRuns: async (_: unknown, args: { automationId?: string | null; contactId?: string | null; status?: RunStatus | null }) =>
        (await listRuns(deps.db, args)).map(runShape),
    },
    Contact: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      automationRuns: async (contact: { id: string }) => (await listRuns(deps.db, { contactId: contact.id })).map(runShape),
    },
    AutomationRun: {
      automation: async (run: ReturnType<typeof runShape>) => {
        const row = await findAutomation(deps.db, run.automationId);
        // Runs cascade with their automation, so this holds unless a delete races the read.
        if (!row) throw new Error(`automation ${run.automationId} of run ${run.id} is gone`);
        return automationShape(row);
      },
      steps: async (run: ReturnType<typeof runShape>) => (await stepsOfRun(deps.db, run.id)).map(stepShape),
    },
  };
}
