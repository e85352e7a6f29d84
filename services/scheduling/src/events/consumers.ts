import { startConsumerWhenReady, type CloudEvent, type PendingConsumer } from '@textloop/events';
import type { ServiceDeps } from '@textloop/service-kit';
import type { SchedulingContext } from '../context';
import type { Database } from '../db/database';
import { applyEvent, type TriggerEvent } from '../triggers';
import { recordMessageStatus } from '../message-links';
import { recordActivity, recordInbound } from '../attribution';

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

/**
 * Scheduling's durable consumers. Every stream belongs to another service, so each attaches once
 * that stream exists and replays it from the start (deliver all): an event published before
 * scheduling started still starts its runs. Automations only react to events newer than themselves.
 */
export function startConsumers(deps: ServiceDeps<Database>, ctx: SchedulingContext): PendingConsumer[] {
  const { js, jsm } = deps.nats;
  const common = { js, jsm, deliver: 'all' as const, logger: deps.logger };
  const trigger = (durable: string) => async (event: CloudEvent<Data>, subject: string) => {
    const mapped = builtInEvent(subject, event);
    if (mapped) await applyEvent(ctx, durable, mapped);
  };
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
      durable: 'scheduling-messages',
      filterSubjects: ['messaging.message.>'],
      // Bulk traffic (statuses of messages nobody here asked for) is acknowledged unread; delivered
      // events still count as the built-in message.delivered trigger, received ones for attribution.
      ignore: (subject, data) => !data?.correlation && subject !== 'messaging.message.delivered' && subject !== 'messaging.message.received',
      handle: async (event, subject) => {
        await recordMessageStatus(ctx, subject, event.data);
        if (subject === 'messaging.message.received') await recordInbound(ctx, event.data, new Date(event.time));
        await trigger('scheduling-messages')(event, subject);
      },
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
