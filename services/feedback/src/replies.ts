import { sql, type Transaction } from 'kysely';
import { newId, type CloudEvent, type EventData } from '@textloop/events';
import { enqueueEvents, markProcessed, type OutboxEntry, type ServiceDeps } from '@textloop/service-kit';
import type { Database } from './db/database';
import { isErased, lockAgainstErasure } from './erasure';
import { closeLapsed, EVENT_SOURCE, OPEN_STATUSES, REPROMPT_TEXT, surveyMessage, type InvitationRow } from './invitations';
import { npsCategory } from './nps';
import { parseScore } from './parse-score';

type Deps = ServiceDeps<Database>;
type Entry = OutboxEntry | { subject: string; data: unknown };
type Received = EventData<'messaging.message.received'>;

/** Durable of the messaging.message.received consumer (also its processed_events key). */
export const REPLIES_DURABLE = 'feedback-replies';
/** First key of the per-contact reply lock (the erasure lock is 75_001). */
const REPLY_LOCK_CLASS = 75_002;

/** Why feedback hands a reply to a survey message back to messaging (feedback.reply.unhandled reason). */
export type UnhandledReason = 'NO_OPEN_INVITATION' | 'RESPONSE_WINDOW_CLOSED' | 'NOT_A_SCORE';

export type ReplyOutcome = 'ignored' | 'duplicate' | 'score' | 'reprompt' | 'comment' | UnhandledReason;

interface Reply {
  messageId: string;
  contactId: string;
  body: string;
  /** the inReplyTo correlation: which invitation the message answered, when it says */
  invitationId: string | undefined;
  receivedAt: Date;
}

/**
 * A reply to a SURVEY message (messaging leaves those to feedback). Keyword messages (STOP, HELP…)
 * and replies to other categories are not survey replies: messaging has handled them. The reply
 * answers the invitation its inReplyTo correlation names when that one is still open, else the
 * contact's most recent open invitation; only within the response window. What it cannot use goes
 * back to messaging as feedback.reply.unhandled, which opens the contact's conversation with it.
 * Effect, outgoing commands and events, and the processed mark commit in one transaction.
 */
export async function handleReply(deps: Deps, event: CloudEvent<Received>): Promise<ReplyOutcome> {
  const { messageId, contactId, body, inReplyTo, keyword } = event.data;
  if (keyword || inReplyTo?.category !== 'SURVEY') return 'ignored';
  if (!contactId) {
    deps.logger.warn({ messageId }, 'survey reply without a contact; ignored');
    return 'ignored';
  }
  const named = inReplyTo.correlation?.surveyInvitationId;
  const at = new Date(event.time);
  const reply: Reply = {
    messageId,
    contactId,
    body,
    invitationId: typeof named === 'string' ? named : undefined,
    // When messaging received it: a reply that came in time counts even if it is handled late.
    receivedAt: Number.isNaN(at.getTime()) ? deps.clock.now() : at,
  };
  const { outcome, entries } = await deps.db.transaction().execute(async (trx) => {
    if (!(await markProcessed(trx, REPLIES_DURABLE, event.id))) return { outcome: 'duplicate' as const, entries: [] };
    // One reply of a contact at a time: each sees what the one before it did (a score, a re-prompt).
    await sql`select pg_advisory_xact_lock(${REPLY_LOCK_CLASS}::int, hashtext(${contactId}))`.execute(trx);
    await lockAgainstErasure(trx, contactId);
    if (await isErased(trx, contactId)) return { outcome: 'ignored' as const, entries: [] };
    const result = await answer(trx, reply);
    await enqueueEvents(trx, EVENT_SOURCE, result.entries, deps.clock);
    return result;
  });
  if (entries.length) deps.outbox.kick();
  deps.logger.debug({ messageId, contactId, outcome }, 'survey reply handled');
  return outcome;
}

function unhandled(reply: Reply, reason: UnhandledReason): { outcome: ReplyOutcome; entries: Entry[] } {
  return { outcome: reason, entries: [{ subject: 'feedback.reply.unhandled', data: { messageId: reply.messageId, contactId: reply.contactId, reason } }] };
}

/** The open invitation the reply answers, locked; undefined when none is open for it. */
async function invitationFor(trx: Transaction<Database>, reply: Reply): Promise<InvitationRow | undefined> {
  const open = () =>
    trx
      .selectFrom('survey_invitations')
      .selectAll()
      .where('contact_id', '=', reply.contactId)
      .where('status', 'in', OPEN_STATUSES)
      .where('sent_at', '<=', reply.receivedAt)
      .where('expires_at', '>', reply.receivedAt);
  if (reply.invitationId) {
    const named = await open().where('id', '=', reply.invitationId).forUpdate().executeTakeFirst();
    if (named) return named;
  }
  return open().orderBy('sent_at', 'desc').orderBy('id', 'desc').limit(1).forUpdate().executeTakeFirst();
}

async function answer(trx: Transaction<Database>, reply: Reply): Promise<{ outcome: ReplyOutcome; entries: Entry[] }> {
  await closeLapsed(trx, reply.receivedAt, { contactId: reply.contactId });
  const invitation = await invitationFor(trx, reply);
  if (!invitation) {
    const named = reply.invitationId
      ? await trx.selectFrom('survey_invitations').select(['expires_at']).where('id', '=', reply.invitationId).executeTakeFirst()
      : undefined;
    const lapsed = named !== undefined && named.expires_at.getTime() <= reply.receivedAt.getTime();
    return unhandled(reply, lapsed ? 'RESPONSE_WINDOW_CLOSED' : 'NO_OPEN_INVITATION');
  }
  const survey = await trx.selectFrom('surveys').selectAll().where('id', '=', invitation.survey_id).executeTakeFirstOrThrow();
  const contactId = reply.contactId;
  const thanks = survey.thank_you ? [surveyMessage(invitation, contactId, 'thanks', survey.thank_you)] : [];

  if (invitation.awaiting === 'comment') {
    const comment = reply.body.trim();
    const response = await trx
      .updateTable('survey_responses')
      .set({ comment: comment || null })
      .where('invitation_id', '=', invitation.id)
      .returning(['id'])
      .executeTakeFirstOrThrow();
    await trx.updateTable('survey_invitations').set({ status: 'COMPLETED', awaiting: null }).where('id', '=', invitation.id).execute();
    const recorded: Entry[] = comment ? [{ subject: 'feedback.comment.recorded', data: { responseId: response.id, contactId, comment } }] : [];
    return { outcome: 'comment', entries: [...recorded, ...thanks] };
  }

  const score = parseScore(reply.body);
  if (score === null) {
    if (invitation.reprompted) return unhandled(reply, 'NOT_A_SCORE');
    await trx.updateTable('survey_invitations').set({ reprompted: true }).where('id', '=', invitation.id).execute();
    return { outcome: 'reprompt', entries: [surveyMessage(invitation, contactId, 'reprompt', REPROMPT_TEXT)] };
  }

  const category = npsCategory(score);
  const responseId = newId();
  await trx
    .insertInto('survey_responses')
    .values({
      id: responseId,
      survey_id: invitation.survey_id,
      invitation_id: invitation.id,
      contact_id: contactId,
      score,
      category,
      touchpoint: invitation.touchpoint,
      comment: null,
      responded_at: reply.receivedAt,
    })
    .execute();
  const followUp = survey.follow_up;
  await trx
    .updateTable('survey_invitations')
    .set(
      followUp
        ? { status: 'ANSWERED', awaiting: 'comment', answered_at: reply.receivedAt }
        : { status: 'COMPLETED', awaiting: null, answered_at: reply.receivedAt },
    )
    .where('id', '=', invitation.id)
    .execute();
  const entries: Entry[] = [
    {
      subject: 'feedback.response.recorded',
      data: { responseId, surveyId: invitation.survey_id, invitationId: invitation.id, contactId, score, category, touchpoint: invitation.touchpoint },
    },
  ];
  if (category === 'DETRACTOR')
    entries.push({ subject: 'feedback.detractor.detected', data: { responseId, contactId, score, surveyId: invitation.survey_id } });
  entries.push(...(followUp ? [surveyMessage(invitation, contactId, 'followup', followUp)] : thanks));
  return { outcome: 'score', entries };
}
