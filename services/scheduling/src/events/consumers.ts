import { notifyFilter, retireDurables, startConsumerWhenReady, statusSubjectOfNotify, type CloudEvent, type PendingConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { SchedulingContext } from '../context';
import type { Database } from '../db/database';
import { applyEvent, type TriggerEvent } from '../triggers';
import { recordMessageStatus } from '../message-links';
import { recordActivity, recordInbound } from '../attribution';
import { DeliveredTriggerFeed } from './delivered-trigger';

type Data = Record<string, unknown>;

/**
 * Built-in events automations can trigger on (contract/events.md), mapped from the subject each
 * service publishes: name and properties as an automation sees them.
 */
export function builtInEvent(subject: string, event: CloudEvent<Data>): TriggerEvent | undefined {
  const data = event.data;
  const contactId = typeof data.contactId === 'string' ? data.contactId : undefined;
  if (!contactId) return undefined;
  const base = { eventId: event.id, contactId, time: event.time };
  const { contactId: _omit, ...rest } = data;
  switch (subject) {
    case 'contacts.contact.created':
      return { ...base, name: 'contact.created', properties: rest };
    case 'contacts.contact.dormant':
      return { ...base, name: 'contact.dormant', properties: rest };
    case 'contacts.contact.unsubscribed':
      return { ...base, name: 'contact.unsubscribed', properties: rest };
    case 'messaging.message.delivered':
      return { ...base, name: 'message.delivered', properties: rest };
    case 'messaging.conversation.resolved':
      return { ...base, name: 'conversation.resolved', properties: rest };
    case 'feedback.response.recorded':
      return { ...base, name: 'survey.answered', properties: rest };
    default:
      return undefined;
  }
}

/** Durables scheduling ran before and no longer does (deleted at start-up so the stream keeps nothing pending for them). */
const RETIRED_DURABLES = [
  // messaging.message.>: every status of every message, the bulk of it acknowledged unread. Now
  // scheduling-message-status (its own messages' copies), scheduling-delivered and scheduling-received.
  'scheduling-messages',
];

/**
 * Scheduling's durable consumers. Every stream belongs to another service, so each attaches once
 * that stream exists and replays it from the start (deliver all): an event published before
 * scheduling started still starts its runs. Automations only react to events newer than themselves.
 *
 * Message statuses: scheduling needs the statuses of the messages it asked for (steps, scheduled
 * messages, campaign recipients: messaging.cmd.send/verify with a correlation), which messaging
 * copies to messaging.notify.scheduling.<status>. It reads only those copies, so a bulk send by
 * someone else (three status events per message) never reaches it; a server before 2.10 takes one
 * filter subject per consumer and cannot filter on the payload. From the contract subjects it reads
 * messaging.message.received (campaign replies and STOP) here, and messaging.message.delivered
 * (the built-in trigger) only while an automation uses it (deliveredTrigger).
 */
const triggerFor = (ctx: SchedulingContext, consumer: string) => async (event: CloudEvent<Data>, subject: string) => {
  const mapped = builtInEvent(subject, event);
  if (mapped) await applyEvent(ctx, consumer, mapped);
};

/**
 * messaging.message.delivered as the built-in message.delivered trigger, read only while an
 * automation uses it (delivered-trigger.ts). Its processed-event key is the retired
 * scheduling-messages', which triggered these before: runs already started are not started again.
 */
export function deliveredTrigger(deps: ServiceDeps<Database>, ctx: SchedulingContext): DeliveredTriggerFeed {
  return new DeliveredTriggerFeed(deps, triggerFor(ctx, 'scheduling-messages'));
}

export function startConsumers(deps: ServiceDeps<Database>, ctx: SchedulingContext): PendingConsumer[] {
  const { js, jsm } = deps.nats;
  const common = { js, jsm, deliver: 'all' as const, logger: deps.logger };
  const trigger = (consumer: string) => triggerFor(ctx, consumer);
  // Best effort and in the background: a missing stream or durable is fine, and start-up does not wait.
  void retireDurables(jsm, 'MESSAGING', RETIRED_DURABLES, deps.logger).catch(() => undefined);
  return [
    startConsumerWhenReady({
      ...common,
      stream: 'EVENTS',
      durable: 'scheduling-events',
      filterSubjects: ['events.>'],
      handle: async (event) => {
        const data = event.data as { eventId: string; contactId: string; name: string; properties: Record<string, unknown>; occurredAt: string };
        // Campaign and offer attribution: reactivation, redemption.
        await recordActivity(ctx, data, new Date(event.time));
        await applyEvent(ctx, 'scheduling-events', {
          eventId: event.id,
          contactId: data.contactId,
          name: data.name,
          properties: data.properties,
          time: event.time,
        });
      },
    }),
    startConsumerWhenReady({
      ...common,
      stream: 'CONTACTS',
      durable: 'scheduling-contacts',
      filterSubjects: ['contacts.>'],
      handle: trigger('scheduling-contacts'),
    }),
    startConsumerWhenReady({
      ...common,
      stream: 'MESSAGING',
      durable: 'scheduling-message-status',
      // messaging.notify.scheduling.<status>: copies of the status events of scheduling's own messages.
      filterSubjects: [notifyFilter('scheduling')],
      // message-links.ts and attribution.ts speak in the contract's subject names.
      handle: async (event, subject) => {
        const status = statusSubjectOfNotify(subject);
        if (status) await recordMessageStatus(ctx, status, event.data);
      },
    }),
    startConsumerWhenReady({
      ...common,
      stream: 'MESSAGING',
      durable: 'scheduling-received',
      filterSubjects: ['messaging.message.received'],
      // Campaign attribution (replies, STOP). An inbound that is neither a STOP nor an answer to a
      // message with a correlation counts for no campaign. (No built-in trigger maps from received.)
      ignore: (_subject, data) => data?.keyword !== 'STOP' && !data?.inReplyTo?.correlation,
      handle: (event) => recordInbound(ctx, event.data, new Date(event.time)),
    }),
    startConsumerWhenReady({
      ...common,
      stream: 'MESSAGING',
      durable: 'scheduling-conversations',
      filterSubjects: ['messaging.conversation.>'],
      handle: trigger('scheduling-conversations'),
    }),
    startConsumerWhenReady({
      ...common,
      stream: 'FEEDBACK',
      durable: 'scheduling-feedback',
      filterSubjects: ['feedback.>'],
      handle: trigger('scheduling-feedback'),
    }),
  ];
}
