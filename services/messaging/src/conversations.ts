import { sql, type Selectable, type Transaction } from 'kysely';
import { newId, type CloudEvent, type EventData, type EventInput } from '@textloop/events';
import { badInput, enqueueEvents, markProcessed, notFound, type Clock, type OutboxEntry } from '@textloop/service-kit';
import type { MessagingContext } from './context';
import { awaitContacts } from './contacts-projection';
import type { ConversationStatus, ConversationsTable, Database } from './db/database';
import type { InboundStep } from './inbound';
import { beforeCursor, keysetPage, type Page } from './pagination';
import { characterCount, hasLiquid, MAX_BODY_CHARS, sendMessages } from './sending';
import { EVENT_SOURCE, withRetry, type Db, type MessageRow } from './status';

export type ConversationRow = Selectable<ConversationsTable>;
export type ConversationChange = EventData<'messaging.conversation.updated'>['change'];

export interface ConversationFilter {
  status?: ConversationStatus | null;
  /** An assignee's name; "" (or blank) lists the unassigned ones. */
  assignee?: string | null;
}

export const MAX_ASSIGNEE_CHARS = 200;

/** Durable of the feedback.reply.unhandled consumer (also the processed_events key). */
export const UNHANDLED_REPLY_DURABLE = 'messaging-feedback-replies';

/** Statuses of a reply that never goes out: the thread shows it, but nobody waits for an answer to it. */
const NOT_SENT = new Set(['SUPPRESSED', 'FAILED', 'CANCELED']);

export async function conversationById(ctx: MessagingContext, id: string): Promise<ConversationRow | undefined> {
  return ctx.db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function conversationsByIds(ctx: MessagingContext, ids: string[]): Promise<Map<string, ConversationRow>> {
  const out = new Map<string, ConversationRow>();
  if (ids.length === 0) return out;
  for (const r of await ctx.db.selectFrom('conversations').selectAll().where('id', 'in', ids).execute()) out.set(r.id, r);
  return out;
}

/** The messages of many conversations at once, each thread oldest first (inbound and replies). */
export async function threadsOf(ctx: MessagingContext, conversationIds: string[]): Promise<Map<string, MessageRow[]>> {
  const out = new Map<string, MessageRow[]>();
  if (conversationIds.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', 'in', conversationIds)
    .orderBy('conversation_id')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  for (const r of rows) {
    const list = out.get(r.conversation_id!) ?? [];
    list.push(r);
    out.set(r.conversation_id!, list);
  }
  return out;
}

/**
 * Newest activity (last message) first, keyset-paginated on (last_message_at, id). A conversation
 * whose activity changes between two pages moves in the list, so it may show twice or be passed over.
 */
export async function listConversations(
  ctx: MessagingContext,
  filter: ConversationFilter,
  first: number,
  after?: string | null,
): Promise<Page<ConversationRow>> {
  let q = ctx.db.selectFrom('conversations');
  if (filter.status) q = q.where('status', '=', filter.status);
  if (filter.assignee !== undefined && filter.assignee !== null) {
    const name = filter.assignee.trim();
    q = name === '' ? q.where('assignee', 'is', null) : q.where('assignee', '=', name);
  }
  return keysetPage(
    first,
    after,
    (row) => row.last_message_at,
    (cursor, limit) =>
      q
        .selectAll()
        .$if(cursor !== undefined, (qb) => qb.where(beforeCursor('last_message_at', cursor!)))
        .orderBy('last_message_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute(),
    () => q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
  );
}

type Entry = OutboxEntry | { subject: string; data: unknown };

const ref = (c: ConversationRow) => ({ conversationId: c.id, contactId: c.contact_id, assignee: c.assignee });

function updatedEvent(c: ConversationRow, change: ConversationChange, previousStatus: ConversationStatus | null, messageId: string | null): Entry {
  const data: EventInput<'messaging.conversation.updated'> = { ...ref(c), status: c.status, change, previousStatus, messageId };
  return { subject: 'messaging.conversation.updated', data };
}

function openedEvent(c: ConversationRow, reopened: boolean, messageId: string | null): Entry {
  const data: EventInput<'messaging.conversation.opened'> = { ...ref(c), reopened, messageId };
  return { subject: 'messaging.conversation.opened', data };
}

async function lockConversation(trx: Db, id: string): Promise<ConversationRow> {
  const row = await trx.selectFrom('conversations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  if (!row) throw notFound(`No conversation has id "${id}" (or its contact was deleted).`);
  return row;
}

/**
 * Puts a contact's inbound message into its conversation, inside the caller's transaction: opens
 * the conversation (the first time), reopens a RESOLVED one, and in any case makes it OPEN (an
 * agent's turn) with the message as its latest activity. Returns the events that report it.
 */
export async function attachInbound(
  trx: Db,
  clock: Clock,
  contactId: string,
  message: { id: string; created_at: Date },
): Promise<{ conversation: ConversationRow; change: ConversationChange; events: Entry[] }> {
  const result = await openForActivity(trx, clock, contactId, { at: message.created_at, messageId: message.id });
  await link(trx, result.conversation.id, message.id);
  return result;
}

/**
 * Something from the contact needs an agent (an inbound message, or survey feedback when messageId
 * is null), inside the caller's transaction: opens the contact's conversation (the first time),
 * reopens a RESOLVED one, and in any case makes it OPEN with `at` as its latest activity (when
 * later). Returns the conversation, locked, and the events that report it.
 */
export async function openForActivity(
  trx: Db,
  clock: Clock,
  contactId: string,
  activity: { at: Date; messageId: string | null },
): Promise<{ conversation: ConversationRow; change: ConversationChange; events: Entry[] }> {
  const now = clock.now();
  const { at, messageId } = activity;
  let current = await trx.selectFrom('conversations').selectAll().where('contact_id', '=', contactId).forUpdate().executeTakeFirst();
  if (!current) {
    const created = await trx
      .insertInto('conversations')
      .values({
        id: newId(),
        contact_id: contactId,
        status: 'OPEN',
        assignee: null,
        last_message_at: at,
        created_at: now,
        updated_at: now,
        resolved_at: null,
      })
      .onConflict((oc) => oc.column('contact_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (created) {
      return { conversation: created, change: 'opened', events: [openedEvent(created, false, messageId), updatedEvent(created, 'opened', null, messageId)] };
    }
    // Another message of this contact opened it a moment ago (its transaction has committed since).
    current = await trx.selectFrom('conversations').selectAll().where('contact_id', '=', contactId).forUpdate().executeTakeFirstOrThrow();
  }
  const conversation = await trx
    .updateTable('conversations')
    .set({
      status: 'OPEN',
      resolved_at: null,
      last_message_at: sql<Date>`greatest(last_message_at, ${at})`,
      updated_at: now,
    })
    .where('id', '=', current.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  if (current.status === 'RESOLVED') {
    return {
      conversation,
      change: 'reopened',
      events: [openedEvent(conversation, true, messageId), updatedEvent(conversation, 'reopened', current.status, messageId)],
    };
  }
  return { conversation, change: 'message', events: [updatedEvent(conversation, 'message', current.status, messageId)] };
}

async function link(trx: Db, conversationId: string, messageId: string): Promise<void> {
  await trx.updateTable('messages').set({ conversation_id: conversationId }).where('id', '=', messageId).execute();
}

/**
 * The inbound step of reply routing (after the keyword step): a keyword is not a conversation; a
 * reply to a SURVEY message is left to feedback (which sends feedback.reply.unhandled when it cannot
 * use it); everything else lands in the contact's conversation.
 */
export function conversationStep(ctx: MessagingContext): InboundStep {
  return async (inbound) => {
    // The keyword step (always first) handled and answered STOP/START/HELP: not a conversation.
    if (inbound.keyword) return;
    const message = inbound.message;
    if (inbound.inReplyTo?.category === 'SURVEY') {
      if (ctx.logger.isLevelEnabled('debug')) {
        ctx.logger.debug({ messageId: message.id, inReplyTo: inbound.inReplyTo.messageId }, 'reply to a survey left to feedback');
      }
      return;
    }
    const contactId = message.contact_id ?? inbound.contact?.id ?? null;
    if (!contactId) {
      ctx.logger.warn({ messageId: message.id }, 'inbound message without a contact: it opens no conversation');
      return;
    }
    const { conversation, events } = await attachInbound(inbound.trx, ctx.clock, contactId, message);
    message.conversation_id = conversation.id;
    inbound.received.conversationId = conversation.id;
    inbound.events.push(...events);
  };
}

/**
 * feedback.reply.unhandled: feedback could not use a reply to a survey, so it goes to the contact's
 * conversation after all (opened or reopened like any inbound message). Idempotent: the event is
 * recorded as processed with the effect, and a message already in a thread is left alone.
 */
export async function attachUnhandledReply(ctx: MessagingContext, event: CloudEvent<EventData<'feedback.reply.unhandled'>>): Promise<void> {
  const { messageId } = event.data;
  const published = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      if (!(await markProcessed(trx, UNHANDLED_REPLY_DURABLE, event.id))) return false;
      const message = await trx
        .selectFrom('messages')
        .select(['id', 'direction', 'contact_id', 'conversation_id', 'created_at'])
        .where('id', '=', messageId)
        .forUpdate()
        .executeTakeFirst();
      if (!message || message.direction !== 'INBOUND') {
        ctx.logger.warn({ messageId, eventId: event.id }, 'feedback.reply.unhandled names no inbound message; ignored');
        return false;
      }
      if (message.conversation_id) return false;
      const contactId = message.contact_id;
      if (!contactId) {
        ctx.logger.warn({ messageId }, 'unhandled survey reply without a contact: it opens no conversation');
        return false;
      }
      const erased = await trx.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
      if (erased) return false;
      const { events } = await attachInbound(trx, ctx.clock, contactId, message);
      await enqueueEvents(trx, EVENT_SOURCE, events, ctx.clock);
      return true;
    }),
  );
  if (published) ctx.outbox.kick();
}

/** An agent's text is sent as written: Liquid markup in it is not rendered. */
const literal = (body: string) => (hasLiquid(body) ? `{% raw %}${body}{% endraw %}` : body);

/**
 * Sends an agent's SUPPORT message to the conversation's contact and links it to the thread, in one
 * transaction with the conversation's change and its events. The conversation becomes PENDING
 * (waiting for the customer), which reopens a RESOLVED one. To an unsubscribed contact the message
 * is recorded SUPPRESSED (OPTED_OUT) and shown in the thread, and the status stays as it was.
 */
export async function replyToConversation(
  ctx: MessagingContext,
  conversationId: string,
  body: string,
): Promise<{ message: MessageRow; conversation: ConversationRow }> {
  if (body.trim() === '') throw badInput('body is empty; write the reply text.', 'body');
  const n = characterCount(body);
  if (n > MAX_BODY_CHARS) {
    throw badInput(`body is ${n} characters; an SMS may be at most ${MAX_BODY_CHARS} characters (about 10 segments). Shorten it or split the reply.`, 'body');
  }
  const existing = await conversationById(ctx, conversationId);
  if (!existing) throw notFound(`No conversation has id "${conversationId}" (or its contact was deleted).`);
  // A contact that texted a moment ago may still be on its way to the projection: wait for it before locking anything.
  if (!(await awaitContacts(ctx, [existing.contact_id])).has(existing.contact_id)) {
    throw notFound(`The contact of conversation "${conversationId}" is not known to messaging (yet); try again in a moment.`);
  }

  const wake = { dispatcher: false, outbox: false };
  const result = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      wake.dispatcher = wake.outbox = false;
      const before = await lockConversation(trx, conversationId);
      const txCtx: MessagingContext = {
        ...ctx,
        db: trx,
        kickDispatcher: () => void (wake.dispatcher = true),
        outbox: { kick: () => void (wake.outbox = true) },
      };
      const [sent] = await sendMessages(
        txCtx,
        [{ input: { contactId: before.contact_id, body: literal(body), category: 'SUPPORT' }, correlation: { conversationId: before.id } }],
        { indexed: false },
      );
      const message: MessageRow = { ...sent!, conversation_id: before.id };
      await link(trx, before.id, message.id);
      const goesOut = !NOT_SENT.has(message.status);
      const now = ctx.clock.now();
      const conversation = await trx
        .updateTable('conversations')
        .set({
          ...(goesOut ? { status: 'PENDING' as const, resolved_at: null } : {}),
          last_message_at: sql<Date>`greatest(last_message_at, ${message.created_at})`,
          updated_at: now,
        })
        .where('id', '=', before.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      const events: Entry[] = [];
      if (before.status === 'RESOLVED' && conversation.status !== 'RESOLVED') events.push(openedEvent(conversation, true, message.id));
      const replied: EventInput<'messaging.conversation.replied'> = {
        ...ref(conversation),
        messageId: message.id,
        status: conversation.status,
        messageStatus: message.status,
      };
      events.push({ subject: 'messaging.conversation.replied', data: replied });
      events.push(updatedEvent(conversation, 'replied', before.status, message.id));
      await enqueueEvents(trx, EVENT_SOURCE, events, ctx.clock);
      return { message, conversation };
    }),
  );
  ctx.outbox.kick();
  if (wake.dispatcher) ctx.kickDispatcher();
  return result;
}

/** Gives the conversation to an agent; an empty or blank name (or null) unassigns it. Assigning to whom it already has changes nothing. */
export async function assignConversation(ctx: MessagingContext, conversationId: string, assignee: string | null | undefined): Promise<ConversationRow> {
  const name = assignee?.trim() || null;
  if (name !== null && characterCount(name) > MAX_ASSIGNEE_CHARS) {
    throw badInput(`assignee is ${characterCount(name)} characters; use a name of at most ${MAX_ASSIGNEE_CHARS}.`, 'assignee');
  }
  return change(ctx, conversationId, async (trx, before) => {
    if (before.assignee === name) return undefined;
    const after = await trx
      .updateTable('conversations')
      .set({ assignee: name, updated_at: ctx.clock.now() })
      .where('id', '=', before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const assigned: EventInput<'messaging.conversation.assigned'> = { ...ref(after), previousAssignee: before.assignee };
    return { after, events: [{ subject: 'messaging.conversation.assigned', data: assigned }, updatedEvent(after, 'assigned', before.status, null)] };
  });
}

/** Marks the conversation RESOLVED; a new inbound message or a reply reopens it. Resolving a resolved one changes nothing. */
export async function resolveConversation(ctx: MessagingContext, conversationId: string): Promise<ConversationRow> {
  return change(ctx, conversationId, async (trx, before) => {
    if (before.status === 'RESOLVED') return undefined;
    const now = ctx.clock.now();
    const after = await trx
      .updateTable('conversations')
      .set({ status: 'RESOLVED', resolved_at: now, updated_at: now })
      .where('id', '=', before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const resolved: EventInput<'messaging.conversation.resolved'> = ref(after);
    return { after, events: [{ subject: 'messaging.conversation.resolved', data: resolved }, updatedEvent(after, 'resolved', before.status, null)] };
  });
}

/** Locks the conversation, applies one change and enqueues its events in the same transaction. */
async function change(
  ctx: MessagingContext,
  conversationId: string,
  apply: (trx: Transaction<Database>, before: ConversationRow) => Promise<{ after: ConversationRow; events: Entry[] } | undefined>,
): Promise<ConversationRow> {
  const outcome = await withRetry(() =>
    ctx.db.transaction().execute(async (trx) => {
      const before = await lockConversation(trx, conversationId);
      const changed = await apply(trx, before);
      if (!changed) return { row: before, published: false };
      await enqueueEvents(trx, EVENT_SOURCE, changed.events, ctx.clock);
      return { row: changed.after, published: true };
    }),
  );
  if (outcome.published) ctx.outbox.kick();
  return outcome.row;
}
