import type { Kysely, Selectable, Transaction } from 'kysely';
import type { AutomationsTable, AutomationRunsTable, Database, RunStatus, ScheduledStepsTable } from './db/database';

export type AutomationRow = Selectable<AutomationsTable>;
export type RunRow = Selectable<AutomationRunsTable>;
export type StepRow = Selectable<ScheduledStepsTable>;

type Db = Kysely<Database> | Transaction<Database>;

export function listAutomations(db: Db): Promise<AutomationRow[]> {
  return db.selectFrom('automations').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export async function findAutomation(db: Db, id: string): Promise<AutomationRow | undefined> {
  return db.selectFrom('automations').selectAll().where('id', '=', id).executeTakeFirst();
}

export interface RunFilter {
  automationId?: string | null;
  contactId?: string | null;
  status?: RunStatus | null;
}

/** Runs newest first. Runs appear once automations fire (automations issue); until then this is empty. */
export function listRuns(db: Db, filter: RunFilter = {}): Promise<RunRow[]> {
  let query = db.selectFrom('automation_runs').selectAll();
  if (filter.automationId) query = query.where('automation_id', '=', filter.automationId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.status) query = query.where('status', '=', filter.status);
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
}

export function stepsOfRun(db: Db, runId: string): Promise<StepRow[]> {
  return db.selectFrom('scheduled_steps').selectAll().where('run_id', '=', runId).orderBy('step_index').execute();
}

/**
 * Right to erasure: removes every run of the contact (their scheduled steps cascade). Automations
 * themselves hold no personal data.
 */
export async function eraseContact(db: Db, contactId: string): Promise<number> {
  const result = await db.deleteFrom('automation_runs').where('contact_id', '=', contactId).executeTakeFirst();
  return Number(result.numDeletedRows);
}
