import { GraphQLError } from 'graphql';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { callRpc, newId, RpcError, type CloudEvent, type ContactSummary, type EventData } from '@textloop/events';
import {
  addDuration,
  badInput,
  conflict,
  enqueueEvents,
  isUniqueViolation,
  markProcessed,
  notFound,
  parseDuration,
  type OutboxEntry,
  type ServiceDeps,
} from '@textloop/service-kit';
import type { Database, InvitationStatus, SurveyInvitationsTable } from './db/database';
import { isErased, lockAgainstErasure } from './erasure';
import { DEFAULT_RESPONSE_WINDOW, findSurvey, type SurveyRow } from './surveys';

export type InvitationRow = Selectable<SurveyInvitationsTable>;
type Db = Kysely<Database> | Transaction<Database>;
type Deps = ServiceDeps<Database>;

/** CloudEvent source of everything feedback publishes. */
export const EVENT_SOURCE = 'textloop/feedback';
/** Durable of the feedback.cmd.send_survey consumer (also its processed_events key). */
export const SEND_SURVEY_DURABLE = 'feedback-cmd-send-survey';

/** Invitations waiting for a reply (the score, or the comment after it). */
export const OPEN_STATUSES: InvitationStatus[] = ['SENT', 'ANSWERED'];

/** What a survey message is, in its correlation (and its requestId). */
export type SurveyMessageKind = 'question' | 'reprompt' | 'followup' | 'thanks';

/** Sent once after the first reply that is not a score. */
export const REPROMPT_TEXT = 'Please reply with a number from 0 to 10';

/**
 * The messaging.cmd.send of one survey message: SURVEY category (quiet hours apply), the text as
 * body (messaging renders its Liquid with the contact's fields), and a requestId fixed by the
 * invitation and kind, so the same message is never sent twice. The correlation comes back on the
 * message's status events and on the inReplyTo of a reply to it.
 */
export function surveyMessage(
  invitation: Pick<InvitationRow, 'id' | 'survey_id'>,
  contactId: string,
  kind: SurveyMessageKind,
  body: string,
): OutboxEntry<'messaging.cmd.send'> {
  return {
    subject: 'messaging.cmd.send',
    data: {
      requestId: `survey:${invitation.id}:${kind}`,
      contactId,
      body,
      category: 'SURVEY',
      correlation: { surveyInvitationId: invitation.id, surveyId: invitation.survey_id, kind },
    },
  };
}

function windowOf(survey: Pick<SurveyRow, 'response_window'>) {
  return parseDuration(survey.response_window) ?? parseDuration(DEFAULT_RESPONSE_WINDOW)!;
}

/**
 * Closes the open invitations whose response window ended by `at` (all of them, or one contact's,
 * or one contact's for one survey): unanswered ones become EXPIRED; answered ones whose comment did
 * not come become COMPLETED (their score stands).
 */
export async function closeLapsed(db: Db, at: Date, scope: { contactId?: string; surveyId?: string } = {}): Promise<number> {
  let q = db
    .updateTable('survey_invitations')
    .set({ status: sql<InvitationStatus>`case when status = 'SENT' then 'EXPIRED' else 'COMPLETED' end`, awaiting: null })
    .where('status', 'in', OPEN_STATUSES)
    .where('expires_at', '<=', at);
  if (scope.contactId !== undefined) q = q.where('contact_id', '=', scope.contactId);
  if (scope.surveyId !== undefined) q = q.where('survey_id', '=', scope.surveyId);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** The status as of `now`: an open invitation whose window has ended reads as closed before the sweep gets to it. */
export function statusAt(row: Pick<InvitationRow, 'status' | 'expires_at'>, now: Date): InvitationStatus {
  if (!OPEN_STATUSES.includes(row.status) || row.expires_at.getTime() > now.getTime()) return row.status;
  return row.status === 'SENT' ? 'EXPIRED' : 'COMPLETED';
}

function openInvitationOf(db: Db, surveyId: string, contactId: string) {
  return db
    .selectFrom('survey_invitations')
    .select(['id', 'sent_at', 'expires_at'])
    .where('survey_id', '=', surveyId)
    .where('contact_id', '=', contactId)
    .where('status', 'in', OPEN_STATUSES)
    .executeTakeFirst();
}

/** Inserts a SENT invitation and queues its question, in the caller's transaction. */
async function invite(
  trx: Transaction<Database>,
  deps: Deps,
  survey: SurveyRow,
  contactId: string,
  options: { requestId: string | null; correlation: Record<string, unknown> | null },
): Promise<InvitationRow> {
  const now = deps.clock.now();
  const invitation = await trx
    .insertInto('survey_invitations')
    .values({
      id: newId(),
      survey_id: survey.id,
      contact_id: contactId,
      status: 'SENT',
      request_id: options.requestId,
      awaiting: 'score',
      touchpoint: survey.touchpoint,
      correlation: options.correlation ? JSON.stringify(options.correlation) : null,
      sent_at: now,
      expires_at: addDuration(now, windowOf(survey)),
      created_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  await enqueueEvents(trx, EVENT_SOURCE, [surveyMessage(invitation, contactId, 'question', survey.question)], deps.clock);
  return invitation;
}

const noContact = (contactId: string) => notFound(`No contact has id "${contactId}" (or it was deleted).`);

function alreadyOpen(contactId: string, survey: SurveyRow, open?: { id: string; sent_at: Date; expires_at: Date }): GraphQLError {
  const which = open ? ` (invitation ${open.id}, sent ${open.sent_at.toISOString()}, open until ${open.expires_at.toISOString()})` : '';
  return conflict(
    `Contact "${contactId}" already has an open invitation to survey "${survey.name}"${which}; send it again once that one is answered or its response window ends.`,
    'contactId',
  );
}

async function contactOf(deps: Deps, contactId: string): Promise<ContactSummary | undefined> {
  const { contacts } = await callRpc(deps.nats.nc, 'rpc.contacts.get', { ids: [contactId] });
  return contacts.find((c) => c.contactId === contactId);
}

/**
 * sendSurvey: invites a contact now. Unknown survey or contact → NOT_FOUND; an unsubscribed
 * contact → BAD_USER_INPUT on contactId (no survey goes to someone who opted out); an invitation
 * to the same survey still open for that contact → CONFLICT.
 */
export async function sendSurvey(deps: Deps, surveyId: string, contactId: string): Promise<InvitationRow> {
  const survey = await findSurvey(deps.db, surveyId);
  if (!survey) throw notFound(`No survey has id "${surveyId}"; list them with surveys or create one with createSurvey.`);
  let contact: ContactSummary | undefined;
  try {
    contact = await contactOf(deps, contactId);
  } catch (err) {
    if (err instanceof RpcError) throw new GraphQLError(`Could not check the contact: ${err.message}.`);
    throw err;
  }
  if (!contact) throw noContact(contactId);
  if (!contact.subscribed) {
    throw badInput(`Contact "${contactId}" has unsubscribed (e.g. replied STOP); surveys are not sent to unsubscribed contacts.`, 'contactId');
  }
  try {
    const invitation = await deps.db.transaction().execute(async (trx) => {
      await lockAgainstErasure(trx, contactId);
      if (await isErased(trx, contactId)) throw noContact(contactId);
      await closeLapsed(trx, deps.clock.now(), { contactId, surveyId });
      const open = await openInvitationOf(trx, surveyId, contactId);
      if (open) throw alreadyOpen(contactId, survey, open);
      return invite(trx, deps, survey, contactId, { requestId: null, correlation: null });
    });
    deps.outbox.kick();
    return invitation;
  } catch (err) {
    // Two sends at the same moment: the one-open-invitation index refuses the second.
    if (isUniqueViolation(err, 'survey_invitations_open_idx')) throw alreadyOpen(contactId, survey);
    throw err;
  }
}

export type SendSurveyOutcome = 'sent' | 'duplicate' | 'no-survey' | 'no-contact' | 'unsubscribed' | 'already-open';

/**
 * feedback.cmd.send_survey (a SEND_SURVEY automation step). requestId is the idempotency key: a
 * command already handled invites nobody again. What the mutation refuses is not retried here:
 * an unsubscribed contact gets a FAILED invitation (failure_reason UNSUBSCRIBED) and no message; an
 * unknown survey or contact, or an invitation to that survey still open for the contact, is logged
 * and skipped. contacts not answering throws, so the command is retried.
 */
export async function handleSendSurveyCommand(deps: Deps, event: CloudEvent<EventData<'feedback.cmd.send_survey'>>): Promise<SendSurveyOutcome> {
  const { requestId, surveyId, contactId } = event.data;
  const correlation = event.data.correlation ?? null;
  const outcome = await decide();
  if (outcome === 'sent') deps.outbox.kick();
  const log = { requestId, surveyId, contactId, outcome };
  if (outcome === 'no-survey' || outcome === 'no-contact') deps.logger.warn(log, 'feedback.cmd.send_survey not carried out');
  else deps.logger.debug(log, 'feedback.cmd.send_survey handled');
  return outcome;

  async function decide(): Promise<SendSurveyOutcome> {
    const done = await deps.db.selectFrom('survey_invitations').select('id').where('request_id', '=', requestId).executeTakeFirst();
    if (done) return 'duplicate';
    const survey = await findSurvey(deps.db, surveyId);
    if (!survey) return 'no-survey';
    const contact = await contactOf(deps, contactId);
    try {
      return await deps.db.transaction().execute(async (trx): Promise<SendSurveyOutcome> => {
        if (!(await markProcessed(trx, SEND_SURVEY_DURABLE, event.id))) return 'duplicate';
        await lockAgainstErasure(trx, contactId);
        if (!contact || (await isErased(trx, contactId))) return 'no-contact';
        const now = deps.clock.now();
        if (!contact.subscribed) {
          await trx
            .insertInto('survey_invitations')
            .values({
              id: newId(),
              survey_id: survey.id,
              contact_id: contactId,
              status: 'FAILED',
              request_id: requestId,
              awaiting: null,
              touchpoint: survey.touchpoint,
              failure_reason: 'UNSUBSCRIBED',
              correlation: correlation ? JSON.stringify(correlation) : null,
              sent_at: now,
              expires_at: now,
              created_at: now,
            })
            .execute();
          return 'unsubscribed';
        }
        await closeLapsed(trx, now, { contactId, surveyId });
        if (await openInvitationOf(trx, surveyId, contactId)) return 'already-open';
        await invite(trx, deps, survey, contactId, { requestId, correlation });
        return 'sent';
      });
    } catch (err) {
      // The same requestId in another event, or a concurrent invitation: handled by the other one.
      if (isUniqueViolation(err, 'survey_invitations_request_id_key')) return 'duplicate';
      if (isUniqueViolation(err, 'survey_invitations_open_idx')) return 'already-open';
      throw err;
    }
  }
}

/** Statuses of a question message that mean it never reached the contact. */
const UNSENT_SUBJECTS = new Set([
  'messaging.message.failed',
  'messaging.message.suppressed',
  'messaging.message.undelivered',
  'messaging.message.expired',
  'messaging.message.canceled',
]);

/**
 * Status events of survey questions (their correlation names the invitation, kind "question"):
 * - sent: messaging may have held the question back (quiet hours), so the response window runs
 *   from when it actually left, never shorter than from the invitation;
 * - failed, suppressed, undelivered, expired, canceled: the contact never got it; an invitation
 *   nobody answered yet becomes FAILED with the error code (e.g. OPTED_OUT, TEMPLATE_ERROR).
 * Both are idempotent as updates (a later max, a guarded status change), so no processed mark.
 */
export async function handleQuestionStatus(deps: Deps, subject: string, event: CloudEvent<EventData<'messaging.message.sent'>>): Promise<void> {
  const correlation = event.data.correlation;
  const invitationId = correlation?.surveyInvitationId;
  if (typeof invitationId !== 'string' || correlation?.kind !== 'question') return;
  if (subject === 'messaging.message.sent') {
    const sentAt = new Date(event.time);
    if (Number.isNaN(sentAt.getTime())) return;
    const row = await deps.db
      .selectFrom('survey_invitations')
      .innerJoin('surveys', 'surveys.id', 'survey_invitations.survey_id')
      .select(['survey_invitations.expires_at', 'surveys.response_window'])
      .where('survey_invitations.id', '=', invitationId)
      .where('survey_invitations.status', '=', 'SENT')
      .executeTakeFirst();
    if (!row) return;
    const expiresAt = addDuration(sentAt, windowOf(row));
    if (expiresAt.getTime() <= row.expires_at.getTime()) return;
    await deps.db
      .updateTable('survey_invitations')
      .set({ expires_at: sql<Date>`greatest(expires_at, ${expiresAt})` })
      .where('id', '=', invitationId)
      .where('status', '=', 'SENT')
      .execute();
    return;
  }
  if (!UNSENT_SUBJECTS.has(subject)) return;
  const result = await deps.db
    .updateTable('survey_invitations')
    .set({ status: 'FAILED', awaiting: null, failure_reason: event.data.errorCode ?? event.data.status })
    .where('id', '=', invitationId)
    .where('status', '=', 'SENT')
    .where('reprompted', '=', false)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) > 0) deps.logger.debug({ invitationId, subject }, 'survey question not delivered; invitation FAILED');
}

export function findInvitation(db: Db, id: string): Promise<InvitationRow | undefined> {
  return db.selectFrom('survey_invitations').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Closes lapsed invitations now and then, so their status is right for readers that do not go
 * through statusAt (the report). Replies and sends close a contact's lapsed invitations themselves.
 */
export class ExpirySweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly deps: Deps,
    private readonly intervalMs = 60_000,
  ) {}

  start(): void {
    if (this.timer) return;
    const tick = () => {
      if (this.running) return;
      this.running = closeLapsed(this.deps.db, this.deps.clock.now())
        .then((n) => n > 0 && this.deps.logger.debug({ closed: n }, 'closed lapsed survey invitations'))
        .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'closing lapsed survey invitations failed; will retry'))
        .finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
