import type { Selectable } from 'kysely';
import { GraphQLError } from 'graphql';
import { callRpc, newId, RpcError } from '@textloop/events';
import { badInput, conflict, isUniqueViolation, notFound } from '@textloop/service-kit';
import { normalizePhone, PhoneError } from '@textloop/sms';
import type { SchedulingContext } from './context';
import type { MessageCategory, ScheduledMessagesTable } from './db/database';
import { isErased, lockAgainstErasure } from './erasure';

export type ScheduledMessageRow = Selectable<ScheduledMessagesTable>;

export interface ScheduleMessageInput {
  contactId?: string | null;
  to?: string | null;
  body?: string | null;
  template?: string | null;
  variables?: unknown;
  category?: MessageCategory | null;
  sendAt: string | Date;
  idempotencyKey?: string | null;
}

const YEAR_MS = 366 * 24 * 3600_000;
const MAX_BODY_CHARS = 1600;

function unavailable(err: RpcError): GraphQLError {
  return new GraphQLError(`Could not check the message's recipient and template: ${err.message}.`);
}

/**
 * Accepts a message for a future time. The recipient and template are checked now (so a typo is
 * an error today, not a FAILED message next month); the text is rendered by messaging when the
 * time comes, with the contact's data as it is then.
 */
export async function scheduleMessage(ctx: SchedulingContext, input: ScheduleMessageInput): Promise<ScheduledMessageRow> {
  const now = ctx.clock.now();
  const sendAt = new Date(input.sendAt);
  if (Number.isNaN(sendAt.getTime())) throw badInput('sendAt is not a date-time; write e.g. 2026-12-01T09:00:00Z.', 'sendAt');
  if (sendAt.getTime() <= now.getTime()) {
    throw badInput(`sendAt ${sendAt.toISOString()} is not in the future (now is ${now.toISOString()}); use sendMessage to send now.`, 'sendAt');
  }
  if (sendAt.getTime() > now.getTime() + YEAR_MS) throw badInput('sendAt is more than a year ahead; schedule it at most one year from now.', 'sendAt');
  const hasContact = Boolean(input.contactId);
  const hasTo = Boolean(input.to?.trim());
  if (hasContact === hasTo) {
    throw badInput(hasContact ? 'Give contactId or to, not both.' : 'Say who receives the message: give contactId or to (a phone number).', 'to');
  }
  const hasBody = input.body !== undefined && input.body !== null;
  if (hasBody === Boolean(input.template)) {
    throw badInput(hasBody ? 'Give body or template, not both.' : 'Say what to send: give body (the text) or template (a template name).', 'body');
  }
  if (hasBody) {
    if (!input.body!.trim()) throw badInput('body is empty; write the message text.', 'body');
    const n = [...input.body!].length;
    if (n > MAX_BODY_CHARS) throw badInput(`body is ${n} characters; an SMS may be at most ${MAX_BODY_CHARS} characters.`, 'body');
  }
  const variables = input.variables ?? {};
  if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
    throw badInput('variables must be a JSON object, e.g. {"orderId": "A-1001"}.', 'variables');
  }
  if (input.idempotencyKey !== undefined && input.idempotencyKey !== null && (input.idempotencyKey === '' || input.idempotencyKey.length > 255)) {
    throw badInput('idempotencyKey must be 1 to 255 characters.', 'idempotencyKey');
  }
  if (input.idempotencyKey) {
    const existing = await ctx.db.selectFrom('scheduled_messages').selectAll().where('idempotency_key', '=', input.idempotencyKey).executeTakeFirst();
    if (existing) return existing;
  }

  let to: string;
  try {
    if (input.contactId) {
      const { contacts } = await callRpc(ctx.nats, 'rpc.contacts.get', { ids: [input.contactId] });
      if (!contacts[0]) throw notFound(`No contact has id "${input.contactId}" (or it was deleted).`);
      to = contacts[0].phone;
    } else {
      try {
        to = normalizePhone(input.to!).e164;
      } catch (err) {
        if (err instanceof PhoneError) throw badInput(`${err.message.replace(/\.?$/, '.')} Give the number with its country code (+…).`, 'to', err);
        throw err;
      }
    }
    if (input.template) {
      const { templates } = await callRpc(ctx.nats, 'rpc.messaging.templates', { names: [input.template] });
      if (!templates[0]) throw notFound(`No template is named "${input.template}"; create it with createTemplate or check the spelling.`);
    }
  } catch (err) {
    if (err instanceof RpcError) throw unavailable(err);
    throw err;
  }

  try {
    const row = await ctx.db.transaction().execute(async (trx) => {
      if (input.contactId) {
        // Contacts may still answer for a contact whose deletion scheduling has already handled (or
        // is handling right now): the erased list decides. See erasure.ts.
        await lockAgainstErasure(trx, input.contactId);
        if (await isErased(trx, input.contactId)) throw notFound(`No contact has id "${input.contactId}" (or it was deleted).`);
      }
      return trx
        .insertInto('scheduled_messages')
        .values({
          id: newId(),
          contact_id: input.contactId ?? null,
          to_number: to,
          body: hasBody ? input.body! : null,
          template: input.template ?? null,
          variables: JSON.stringify(variables),
          category: input.category ?? 'TRANSACTIONAL',
          send_at: sendAt,
          idempotency_key: input.idempotencyKey ?? null,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    });
    ctx.kickTimers();
    return row;
  } catch (err) {
    // Two requests with the same key at once: the first one wins, the second gets its row.
    if (input.idempotencyKey && isUniqueViolation(err)) {
      return ctx.db.selectFrom('scheduled_messages').selectAll().where('idempotency_key', '=', input.idempotencyKey).executeTakeFirstOrThrow();
    }
    throw err;
  }
}

export async function cancelScheduledMessage(ctx: SchedulingContext, id: string): Promise<ScheduledMessageRow> {
  const row = await ctx.db
    .updateTable('scheduled_messages')
    .set({ status: 'CANCELED', updated_at: ctx.clock.now() })
    .where('id', '=', id)
    .where('status', '=', 'PENDING')
    .returningAll()
    .executeTakeFirst();
  if (row) return row;
  const existing = await findScheduledMessage(ctx, id);
  if (!existing) throw notFound(`No scheduled message has id "${id}".`);
  if (existing.status === 'CANCELED') return existing;
  throw conflict(`Scheduled message "${id}" is ${existing.status} and can no longer be canceled; only PENDING messages can.`);
}

export function findScheduledMessage(ctx: Pick<SchedulingContext, 'db'>, id: string): Promise<ScheduledMessageRow | undefined> {
  return ctx.db.selectFrom('scheduled_messages').selectAll().where('id', '=', id).executeTakeFirst();
}
