import type { Selectable } from 'kysely';
import type { CloudEvent, EventData } from '@textloop/events';
import { enqueueEvents, markProcessed } from '@textloop/service-kit';
import type { MessagingContext } from './context';
import { openForActivity } from './conversations';
import type { ConversationFeedbackTable } from './db/database';
import { EVENT_SOURCE, withRetry, type Db } from './status';

export type ConversationFeedbackRow = Selectable<ConversationFeedbackTable>;

/** Durable of the consumer of feedback.detractor.detected and feedback.comment.recorded (also the processed_events key). */
export const DETRACTOR_DURABLE = 'messaging-detractors';

/**
 * Closed loop for NPS detractors. feedback.detractor.detected opens the contact's support
 * conversation (or reopens it, or makes it OPEN again) with the score on it, so an agent follows
 * up; the comment that follows (feedback.comment.recorded) is added to it and does the same. The
 * score and comment are kept beside the thread (Conversation.feedback), never as a message: nothing
 * of them is sent to the handset. Comments on responses that were not detractors are not kept.
 *
 * Both events are handled in the order feedback published them (one consumer, one at a time). Each
 * event is recorded as processed with its effect, so redelivery changes nothing.
 */
export async function recordDetractor(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.detractor.detected'>>): Promise<void> {
  const { responseId, contactId, score, surveyId } = event.data;
  const at = eventTime(ctx, event);
  const published = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      if (!(await markProcessed(trx, DETRACTOR_DURABLE, event.id))) return false;
      if (await erased(trx, contactId)) return false;
      const known = await trx.selectFrom('conversation_feedback').select('response_id').where('response_id', '=', responseId).executeTakeFirst();
      if (known) return false;
      const { conversation, events } = await openForActivity(trx, ctx.clock, contactId, { at, messageId: null });
      await trx
        .insertInto('conversation_feedback')
        .values({ response_id: responseId, conversation_id: conversation.id, survey_id: surveyId, score, comment: null, at, commented_at: null })
        .onConflict((oc) => oc.column('response_id').doNothing())
        .execute();
      await enqueueEvents(trx, EVENT_SOURCE, events, ctx.clock);
      return true;
    }),
  );
  if (published) ctx.outbox.kick();
}

/** feedback.comment.recorded: the comment joins its detractor score on the conversation, which becomes OPEN again. */
export async function recordFeedbackComment(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.comment.recorded'>>): Promise<void> {
  const { responseId, comment } = event.data;
  const at = eventTime(ctx, event);
  const published = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      if (!(await markProcessed(trx, DETRACTOR_DURABLE, event.id))) return false;
      const row = await trx
        .selectFrom('conversation_feedback')
        .innerJoin('conversations', 'conversations.id', 'conversation_feedback.conversation_id')
        .select(['conversation_feedback.comment', 'conversations.contact_id'])
        .where('conversation_feedback.response_id', '=', responseId)
        .executeTakeFirst();
      // Not a detractor (or its conversation went with an erased contact): nothing to show.
      if (!row) return false;
      if (row.comment === comment) return false;
      const { events } = await openForActivity(trx, ctx.clock, row.contact_id, { at, messageId: null });
      await trx.updateTable('conversation_feedback').set({ comment, commented_at: at }).where('response_id', '=', responseId).execute();
      await enqueueEvents(trx, EVENT_SOURCE, events, ctx.clock);
      return true;
    }),
  );
  if (published) ctx.outbox.kick();
}

/** The feedback of many conversations at once, each oldest first. */
export async function feedbackOf(ctx: MessagingContext, conversationIds: string[]): Promise<Map<string, ConversationFeedbackRow[]>> {
  const out = new Map<string, ConversationFeedbackRow[]>();
  if (conversationIds.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('conversation_feedback')
    .selectAll()
    .where('conversation_id', 'in', conversationIds)
    .orderBy('conversation_id')
    .orderBy('at')
    .orderBy('response_id')
    .execute();
  for (const r of rows) {
    const list = out.get(r.conversation_id) ?? [];
    list.push(r);
    out.set(r.conversation_id, list);
  }
  return out;
}

async function erased(trx: Db, contactId: string): Promise<boolean> {
  return (await trx.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst()) !== undefined;
}

/** When feedback recorded it (its clock, carried as the event time); now when the time is unusable. */
function eventTime(ctx: MessagingContext, event: CloudEvent<unknown>): Date {
  const at = new Date(event.time);
  return Number.isNaN(at.getTime()) ? ctx.clock.now() : at;
}
