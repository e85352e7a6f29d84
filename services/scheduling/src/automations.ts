import type { Kysely, Selectable, Transaction } from 'kysely';
import { GraphQLError } from 'graphql';
import { callRpc, EVENT_NAME_PATTERN, newId, RpcError } from '@textloop/events';
import { badInput, notFound, parseDuration, parseSignedDuration } from '@textloop/service-kit';
import type { AutomationsTable, AutomationRunsTable, Database, MessageCategory, RunStatus, ScheduledStepsTable, StoredStep } from './db/database';
import type { SchedulingContext } from './context';
import { eraseCampaignData } from './campaigns';
import { lockForErasure, recordErasure } from './erasure';
import { checkOffer, offerWarnings, type OfferInput } from './offers';

export type AutomationRow = Selectable<AutomationsTable>;
export type RunRow = Selectable<AutomationRunsTable>;
export type StepRow = Selectable<ScheduledStepsTable>;

type Db = Kysely<Database> | Transaction<Database>;

const MAX_STEPS = 20;
const CATEGORIES: MessageCategory[] = ['TRANSACTIONAL', 'MARKETING', 'OTP', 'SURVEY', 'SUPPORT'];

export interface AutomationStepInput {
  type: StoredStep['type'];
  template?: string | null;
  category?: MessageCategory | null;
  surveyId?: string | null;
  delay?: string | null;
  relativeTo?: string | null;
  offset?: string | null;
  offer?: OfferInput | null;
}

export interface AutomationInput {
  name: string;
  triggerEvent: string;
  triggerFilter?: unknown;
  runKey?: string | null;
  cancelOn?: string[] | null;
  steps: AutomationStepInput[];
  enabled?: boolean | null;
}

function checkEventName(name: string, field: string): void {
  if (!EVENT_NAME_PATTERN.test(name)) {
    throw badInput(`"${name}" is not an event name: use lowercase words joined by dots, e.g. order.shipped or contact.created.`, field);
  }
}

/** Shape checks that need no other service; returns the steps as stored. */
function checkInput(input: AutomationInput): StoredStep[] {
  if (!input.name?.trim()) throw badInput('name is empty; give the automation a name people recognise, e.g. "Appointment reminders".', 'name');
  if (input.name.length > 200) throw badInput('name is longer than 200 characters.', 'name');
  checkEventName(input.triggerEvent, 'triggerEvent');
  const filter = input.triggerFilter;
  if (filter !== undefined && filter !== null && (typeof filter !== 'object' || Array.isArray(filter))) {
    throw badInput('triggerFilter must be a JSON object of property values to match, e.g. {"days": 30}.', 'triggerFilter');
  }
  if (input.runKey !== undefined && input.runKey !== null && !input.runKey.trim()) {
    throw badInput('runKey is empty; name the event property that identifies a run (e.g. appointmentId) or leave it out.', 'runKey');
  }
  (input.cancelOn ?? []).forEach((name, i) => checkEventName(name, `cancelOn[${i}]`));
  if (input.steps.length === 0) throw badInput('steps is empty; an automation needs at least one step.', 'steps');
  if (input.steps.length > MAX_STEPS) throw badInput(`An automation may have at most ${MAX_STEPS} steps; this one has ${input.steps.length}.`, 'steps');
  return input.steps.map((step, i) => {
    const at = `steps[${i}]`;
    const offer = step.offer !== undefined && step.offer !== null ? checkOffer(step.offer, `${at}.offer`) : null;
    if (offer && step.type !== 'SEND_MESSAGE') {
      throw badInput(`${at}: only SEND_MESSAGE steps carry an offer; remove offer from this ${step.type} step.`, `${at}.offer`);
    }
    if (step.type === 'SEND_MESSAGE' && !step.template) throw badInput(`${at}: a SEND_MESSAGE step needs template (a template name).`, `${at}.template`);
    if (step.type === 'SEND_SURVEY' && !step.surveyId) throw badInput(`${at}: a SEND_SURVEY step needs surveyId.`, `${at}.surveyId`);
    if (step.type !== 'SEND_SURVEY' && step.surveyId) throw badInput(`${at}: surveyId only applies to SEND_SURVEY steps.`, `${at}.surveyId`);
    if (step.type === 'SEND_SURVEY' && step.template)
      throw badInput(`${at}: a SEND_SURVEY step sends the survey's question; leave template out.`, `${at}.template`);
    if (step.category && !CATEGORIES.includes(step.category)) throw badInput(`${at}.category must be one of ${CATEGORIES.join(', ')}.`, `${at}.category`);
    if (step.delay !== undefined && step.delay !== null && !parseDuration(step.delay)) {
      throw badInput(`${at}.delay "${step.delay}" is not an ISO-8601 duration; write e.g. PT5M (5 minutes), PT2H or P1D.`, `${at}.delay`);
    }
    if (step.offset !== undefined && step.offset !== null) {
      if (!parseSignedDuration(step.offset)) {
        throw badInput(`${at}.offset "${step.offset}" is not a signed ISO-8601 duration; write e.g. -PT24H (24 hours before) or PT30M.`, `${at}.offset`);
      }
      if (!step.relativeTo) throw badInput(`${at}: offset needs relativeTo, the event property holding the date-time it is relative to.`, `${at}.relativeTo`);
    }
    if (step.relativeTo !== undefined && step.relativeTo !== null) {
      if (!step.relativeTo.trim()) throw badInput(`${at}.relativeTo is empty; name an event property such as startsAt.`, `${at}.relativeTo`);
      if (step.delay) throw badInput(`${at}: give delay (after the previous step) or relativeTo with offset, not both.`, `${at}.delay`);
    }
    return {
      type: step.type,
      template: step.template ?? null,
      category: step.category ?? null,
      surveyId: step.surveyId ?? null,
      delay: step.delay ?? null,
      relativeTo: step.relativeTo ?? null,
      offset: step.offset ?? null,
      offer,
    };
  });
}

/**
 * Asks messaging and feedback whether the templates and surveys the steps name exist; returns
 * warnings about offers and the templates that should show them.
 */
async function checkReferences(ctx: SchedulingContext, steps: StoredStep[]): Promise<string[]> {
  const templates = [...new Set(steps.flatMap((s) => (s.template ? [s.template] : [])))];
  const surveys = [...new Set(steps.flatMap((s) => (s.surveyId ? [s.surveyId] : [])))];
  try {
    const [foundTemplates, foundSurveys] = await Promise.all([
      templates.length ? callRpc(ctx.nats, 'rpc.messaging.templates', { names: templates }) : { templates: [] },
      surveys.length ? callRpc(ctx.nats, 'rpc.feedback.surveys', { ids: surveys }) : { surveys: [] },
    ]);
    const byName = new Map(foundTemplates.templates.map((t) => [t.name, t]));
    const surveyIds = new Set(foundSurveys.surveys.map((s) => s.surveyId));
    const warnings: string[] = [];
    steps.forEach((step, i) => {
      if (step.template) {
        const template = byName.get(step.template);
        if (!template) throw notFound(`steps[${i}]: no template is named "${step.template}"; create it with createTemplate or check the spelling.`);
        if (step.type === 'START_VERIFICATION' && !template.variables.includes('code')) {
          throw badInput(`steps[${i}]: template "${step.template}" must contain {{ code }} to carry the verification code.`, `steps[${i}].template`);
        }
        if (step.type === 'SEND_MESSAGE')
          warnings.push(...offerWarnings(step.template, template.variables, step.offer ?? null).map((w) => `steps[${i}]: ${w}`));
      }
      if (step.surveyId && !surveyIds.has(step.surveyId)) throw notFound(`steps[${i}]: no survey has id "${step.surveyId}".`);
    });
    return warnings;
  } catch (err) {
    if (err instanceof RpcError) throw new GraphQLError(`Could not check the steps' templates and surveys: ${err.message}.`);
    throw err;
  }
}

export async function createAutomation(ctx: SchedulingContext, input: AutomationInput): Promise<AutomationRow> {
  const steps = checkInput(input);
  const warnings = await checkReferences(ctx, steps);
  const filter = input.triggerFilter as Record<string, unknown> | null | undefined;
  const now = ctx.clock.now();
  return ctx.db
    .insertInto('automations')
    .values({
      id: newId(),
      name: input.name.trim(),
      enabled: input.enabled ?? true,
      trigger_event: input.triggerEvent,
      trigger_filter: filter && Object.keys(filter).length > 0 ? JSON.stringify(filter) : null,
      run_key: input.runKey?.trim() || null,
      cancel_on: [...new Set(input.cancelOn ?? [])],
      steps: JSON.stringify(steps),
      warnings: JSON.stringify(warnings),
      created_at: now,
      enabled_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
    .then((row) => {
      ctx.automationsChanged();
      return row;
    });
}

export async function setAutomationEnabled(ctx: SchedulingContext, id: string, enabled: boolean): Promise<AutomationRow> {
  // Switching on (from off) restarts the clock of "events newer than the automation"; already on, nothing changes.
  const row = await ctx.db
    .updateTable('automations')
    .set((eb) => ({
      enabled,
      enabled_at: enabled ? eb.case().when('enabled', '=', false).then(ctx.clock.now()).else(eb.ref('enabled_at')).end() : eb.ref('enabled_at'),
    }))
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw notFound(`No automation has id "${id}".`);
  ctx.automationsChanged();
  return row;
}

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

/** Runs newest first. */
export function listRuns(db: Db, filter: RunFilter = {}): Promise<RunRow[]> {
  let query = db.selectFrom('automation_runs').selectAll();
  if (filter.automationId) query = query.where('automation_id', '=', filter.automationId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.status) query = query.where('status', '=', filter.status);
  return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1000).execute();
}

export function stepsOfRun(db: Db, runId: string): Promise<StepRow[]> {
  return db.selectFrom('scheduled_steps').selectAll().where('run_id', '=', runId).orderBy('step_index').execute();
}

/**
 * Right to erasure: records the contact as erased (so its events handled later start nothing, see
 * erasure.ts), removes every run of the contact (their scheduled steps cascade) and its scheduled
 * messages; its campaign recipients and offer codes forget it (see eraseCampaignData). Automations
 * themselves hold no personal data. Runs inside the erasure consumer's transaction; idempotent.
 */
export async function eraseContact(trx: Transaction<Database>, contactId: string, now: Date): Promise<number> {
  // Waits for runs or scheduled messages of this contact being written right now, so they are deleted below.
  await lockForErasure(trx, contactId);
  await recordErasure(trx, contactId, now);
  const runs = await trx.deleteFrom('automation_runs').where('contact_id', '=', contactId).executeTakeFirst();
  const messages = await trx.deleteFrom('scheduled_messages').where('contact_id', '=', contactId).executeTakeFirst();
  const campaignRows = await eraseCampaignData(trx, contactId);
  return Number(runs.numDeletedRows) + Number(messages.numDeletedRows) + campaignRows;
}
