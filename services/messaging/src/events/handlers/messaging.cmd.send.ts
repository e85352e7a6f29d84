import { GraphQLError } from 'graphql';
import { callRpc, newId, requesterOf, type CloudEvent, type EventData } from '@textloop/events';
import { GroupCommit } from '../../group-commit';
import { normalizePhone } from '@textloop/sms';
import type { MessagingContext } from '../../context';
import { contactsByIds } from '../../contacts-projection';
import { persist, senderFor, sendMessages, type SendRequest } from '../../sending';
import { freshMessageState, type MessageRow } from '../../status';

type SendCommand = EventData<'messaging.cmd.send'>;

/** A contact the projection has not seen is waited for this long (redelivery with backoff) before the command fails. */
const CONTACT_GRACE_MS = 5 * 60_000;

/** The idempotency key of a command's message: the same requestId never sends twice. */
export const commandKey = (requestId: string) => `cmd:${requestId}`;

function errorCodeFor(err: GraphQLError, command: SendCommand): string {
  const code = err.extensions.code;
  const field = err.extensions.field;
  if (code === 'NOT_FOUND') return err.message.startsWith('No template') ? 'TEMPLATE_NOT_FOUND' : 'CONTACT_NOT_FOUND';
  if (field === 'variables' || field === 'template') return 'TEMPLATE_ERROR';
  if (field === 'to') return 'INVALID_NUMBER';
  return 'INVALID_REQUEST';
}

function requestOf(event: CloudEvent<SendCommand>): SendRequest {
  const command = event.data;
  return {
    input: {
      contactId: command.contactId,
      to: command.to,
      body: command.body,
      template: command.template,
      variables: command.variables,
      category: command.category,
      idempotencyKey: commandKey(command.requestId),
    },
    correlation: command.correlation ?? null,
    requester: requesterOf(event.source),
  };
}

/**
 * messaging.cmd.send: queue the message like sendMessage, with requestId as the idempotency key
 * and the correlation kept for every status event. A command that can never succeed (unknown
 * template, missing variable, bad number) becomes a FAILED message, so the requester hears about it
 * through messaging.message.failed instead of waiting forever.
 */
export async function handleSendCommand(ctx: MessagingContext, event: CloudEvent<SendCommand>): Promise<void> {
  const command = event.data;
  const request = requestOf(event);
  try {
    await sendMessages(ctx, [request], { indexed: false });
  } catch (err) {
    if (!(err instanceof GraphQLError)) throw err; // infrastructure trouble: nak and retry
    const errorCode = errorCodeFor(err, command);
    if (errorCode === 'CONTACT_NOT_FOUND' && command.contactId && (await mayStillArrive(ctx, event, command.contactId))) {
      throw new Error(`contact ${command.contactId} is not in the projection yet; retrying`);
    }
    await persist(ctx, [await failedRow(ctx, command, request, errorCode, err.message)]);
  }
}

/**
 * Commands arrive in bursts (an automation step due for 100,000 contacts at 09:00, a campaign):
 * the consumer's concurrent deliveries are gathered and queued with one sendMessages call (one
 * transaction) per batch. sendMessages is all or nothing, so a batch holding a command that cannot
 * be sent falls back to one call per command, where that one becomes a FAILED message on its own.
 */
export class SendCommandBatcher {
  private readonly group: GroupCommit<CloudEvent<SendCommand>, unknown>;

  constructor(private readonly ctx: MessagingContext) {
    this.group = new GroupCommit((events) => this.commit(events), { maxBatch: 500, maxDelayMs: 2 });
  }

  async handle(event: CloudEvent<SendCommand>): Promise<void> {
    const error = await this.group.push(event);
    if (error) throw error;
  }

  private async commit(events: Array<CloudEvent<SendCommand>>): Promise<unknown[]> {
    if (events.length > 1) {
      try {
        await sendMessages(
          this.ctx,
          events.map((e) => requestOf(e)),
          { indexed: false },
        );
        return events.map(() => undefined);
      } catch (err) {
        if (!(err instanceof GraphQLError)) return events.map(() => err);
      }
    }
    return Promise.all(
      events.map((e) =>
        handleSendCommand(this.ctx, e).then(
          () => undefined,
          (err: unknown) => err ?? new Error('failed'),
        ),
      ),
    );
  }
}

/**
 * A contact this projection has not seen: retry while contacts knows it (its created event is on
 * the way), fail when contacts says there is no such contact. When contacts cannot be asked, wait
 * out a grace period from the command's time.
 */
async function mayStillArrive(ctx: MessagingContext, event: CloudEvent, contactId: string): Promise<boolean> {
  const erased = await ctx.db.selectFrom('erased_contacts').select('contact_id').where('contact_id', '=', contactId).executeTakeFirst();
  if (erased) return false;
  if (ctx.nats) {
    try {
      const { contacts } = await callRpc(ctx.nats, 'rpc.contacts.get', { ids: [contactId] }, 2000);
      return contacts.length > 0;
    } catch {
      // contacts is down or slow: fall back to the grace period
    }
  }
  return ctx.clock.now().getTime() - Date.parse(event.time) < CONTACT_GRACE_MS;
}

async function failedRow(ctx: MessagingContext, command: SendCommand, request: SendRequest, errorCode: string, message: string): Promise<MessageRow> {
  const { input } = request;
  const now = ctx.clock.now();
  const contact = command.contactId ? (await contactsByIds(ctx, [command.contactId])).get(command.contactId) : undefined;
  let to = contact?.phone ?? command.to ?? '';
  let country = contact?.country ?? undefined;
  if (!contact && command.to) {
    try {
      const n = normalizePhone(command.to);
      to = n.e164;
      country = n.country;
    } catch {
      // keep what the requester gave; the message failed on it
    }
  }
  return {
    id: newId(),
    direction: 'OUTBOUND',
    category: command.category,
    status: 'FAILED',
    contact_id: contact?.id ?? command.contactId ?? null,
    to_number: to,
    from_number: senderFor(ctx, country),
    body: command.body ?? '',
    template_id: null,
    encoding: 'GSM7',
    segments: 0,
    country: country ?? null,
    price_amount: null,
    price_currency: null,
    provider: null,
    provider_message_id: null,
    error_code: errorCode,
    error_message: message,
    idempotency_key: input.idempotencyKey!,
    correlation: command.correlation ?? null,
    requester: request.requester ?? null,
    ...freshMessageState(now),
  };
}
