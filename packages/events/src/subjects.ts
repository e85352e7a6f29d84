import { z } from 'zod';

/**
 * Every NATS subject Textloop publishes or consumes, with its payload schema.
 * These are public API (contract/events.md): add fields freely, never rename or change meaning.
 */

const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be E.164, e.g. +14155550100');
const json = z.record(z.string(), z.unknown());
const correlation = json.optional().nullable();

export const messageCategory = z.enum(['TRANSACTIONAL', 'MARKETING', 'OTP', 'SURVEY', 'SUPPORT']);
export const messageStatus = z.enum([
  'SCHEDULED',
  'QUEUED',
  'SENDING',
  'SENT',
  'DELIVERED',
  'UNDELIVERED',
  'FAILED',
  'EXPIRED',
  'SUPPRESSED',
  'CANCELED',
  'RECEIVED',
]);

export const contactSnapshot = z.object({
  contactId: z.string(),
  externalId: z.string().nullish(),
  phone: e164,
  country: z.string().nullish(),
  timezone: z.string(),
  locale: z.string().nullish(),
  firstName: z.string().nullish(),
  lastName: z.string().nullish(),
  email: z.string().nullish(),
  attributes: json,
  tags: z.array(z.string()),
  subscribed: z.boolean(),
  phoneVerified: z.boolean().optional(),
});

const consentChange = z.object({
  contactId: z.string(),
  phone: e164,
  reason: z.string(),
  /** the inbound message whose STOP/START keyword caused the change (reasons STOP_KEYWORD/START_KEYWORD) */
  messageId: z.string().optional(),
});

export const messageStatusEvent = z.object({
  messageId: z.string(),
  contactId: z.string().nullish(),
  to: z.string(),
  from: z.string(),
  category: messageCategory,
  status: messageStatus,
  segments: z.number().int().nonnegative(),
  price: z.object({ amount: z.string(), currency: z.string() }).nullish(),
  provider: z.string().nullish(),
  providerMessageId: z.string().nullish(),
  errorCode: z.string().nullish(),
  correlation,
});

export const conversationStatus = z.enum(['OPEN', 'PENDING', 'RESOLVED']);

const conversationRef = z.object({ conversationId: z.string(), contactId: z.string(), assignee: z.string().nullish() });

export const applicationEvent = z.object({
  eventId: z.string(),
  contactId: z.string(),
  name: z.string(),
  properties: json,
  occurredAt: z.string(),
});

export const subjects = {
  'contacts.contact.created': contactSnapshot,
  'contacts.contact.updated': contactSnapshot,
  'contacts.contact.deleted': z.object({ contactId: z.string() }),
  'contacts.contact.unsubscribed': consentChange.extend({ reason: z.enum(['STOP_KEYWORD', 'API']).or(z.string()) }),
  'contacts.contact.resubscribed': consentChange,
  'contacts.contact.verified': z.object({ contactId: z.string(), phone: e164 }),
  'contacts.contact.dormant': z.object({ contactId: z.string(), days: z.number().int(), lastActiveAt: z.string().nullish() }),

  'messaging.message.queued': messageStatusEvent,
  'messaging.message.sent': messageStatusEvent,
  'messaging.message.delivered': messageStatusEvent,
  'messaging.message.undelivered': messageStatusEvent,
  'messaging.message.failed': messageStatusEvent,
  'messaging.message.expired': messageStatusEvent,
  'messaging.message.suppressed': messageStatusEvent,
  'messaging.message.canceled': messageStatusEvent,
  /** held back by the messaging policy (quiet hours) until a later time */
  'messaging.message.scheduled': messageStatusEvent,
  'messaging.message.received': z.object({
    messageId: z.string(),
    contactId: z.string().nullish(),
    from: z.string(),
    to: z.string(),
    body: z.string(),
    conversationId: z.string().nullish(),
    inReplyTo: z.object({ messageId: z.string(), category: messageCategory, correlation }).nullish(),
    /** a compliance keyword the whole message matched (messaging has already answered it; contacts updates consent for STOP/START) */
    keyword: z.enum(['STOP', 'START', 'HELP']).optional(),
  }),
  'messaging.verification.approved': z.object({ verificationId: z.string(), contactId: z.string().nullish(), to: z.string() }),
  'messaging.verification.failed': z.object({ verificationId: z.string(), contactId: z.string().nullish(), to: z.string() }),
  /** a new conversation, or a RESOLVED one reopened (reopened: true) by an inbound message or an agent's reply */
  'messaging.conversation.opened': conversationRef.extend({ reopened: z.boolean().optional(), messageId: z.string().nullish() }),
  'messaging.conversation.resolved': conversationRef,
  /** assignee is the new one (null: unassigned) */
  'messaging.conversation.assigned': conversationRef.extend({ previousAssignee: z.string().nullish() }),
  /** an agent answered (replyToConversation); messageStatus is QUEUED, or SUPPRESSED when the contact unsubscribed */
  'messaging.conversation.replied': conversationRef.extend({ messageId: z.string(), status: conversationStatus, messageStatus }),
  /** every change of a conversation, with its state afterwards (what the gateway's conversationUpdated follows) */
  'messaging.conversation.updated': conversationRef.extend({
    status: conversationStatus,
    change: z.enum(['opened', 'reopened', 'message', 'replied', 'assigned', 'resolved']),
    previousStatus: conversationStatus.nullish(),
    /** the inbound or reply that caused the change, when one did */
    messageId: z.string().nullish(),
  }),
  'messaging.cmd.send': z.object({
    requestId: z.string().min(1),
    contactId: z.string().nullish(),
    to: z.string().nullish(),
    body: z.string().nullish(),
    template: z.string().nullish(),
    variables: json.nullish(),
    category: messageCategory.default('TRANSACTIONAL'),
    correlation,
  }),
  'messaging.cmd.verify': z.object({
    requestId: z.string().min(1),
    contactId: z.string().nullish(),
    to: z.string().nullish(),
    template: z.string().nullish(),
    /** digits in the code, 4–10 (default 6) */
    codeLength: z.number().int().nullish(),
    correlation,
  }),

  'scheduling.run.started': z.object({ runId: z.string(), automationId: z.string(), contactId: z.string(), key: z.string().nullish() }),
  'scheduling.run.completed': z.object({ runId: z.string(), automationId: z.string(), contactId: z.string(), key: z.string().nullish() }),
  'scheduling.run.canceled': z.object({
    runId: z.string(),
    automationId: z.string(),
    contactId: z.string(),
    key: z.string().nullish(),
    /** why: a cancelOn event, or replaced by a new trigger with the same key */
    reason: z.string().nullish(),
  }),
  'scheduling.campaign.launched': z.object({ campaignId: z.string(), recipients: z.number().int() }),
  'scheduling.campaign.completed': z.object({ campaignId: z.string(), recipients: z.number().int() }),

  'feedback.cmd.send_survey': z.object({ requestId: z.string(), surveyId: z.string(), contactId: z.string(), correlation }),
  'feedback.response.recorded': z.object({
    responseId: z.string(),
    surveyId: z.string(),
    invitationId: z.string(),
    contactId: z.string(),
    score: z.number().int().min(0).max(10),
    category: z.enum(['PROMOTER', 'PASSIVE', 'DETRACTOR']),
    touchpoint: z.string().nullish(),
  }),
  'feedback.comment.recorded': z.object({ responseId: z.string(), contactId: z.string(), comment: z.string() }),
  'feedback.detractor.detected': z.object({ responseId: z.string(), contactId: z.string(), score: z.number().int(), surveyId: z.string() }),
  /** feedback could not use a reply to a SURVEY message (no open invitation, not an answer…): messaging attaches it to the contact's conversation */
  'feedback.reply.unhandled': z.object({ messageId: z.string(), contactId: z.string(), reason: z.string() }),
} as const;

export type Subject = keyof typeof subjects;
export type EventData<S extends Subject> = z.output<(typeof subjects)[S]>;
export type EventInput<S extends Subject> = z.input<(typeof subjects)[S]>;
export type ApplicationEventData = z.output<typeof applicationEvent>;
export type ContactSnapshot = z.output<typeof contactSnapshot>;
export type MessageStatusEventData = z.output<typeof messageStatusEvent>;

/** Application event names: dot-separated lower-case tokens (contract: TrackEventInput.name). */
export const EVENT_NAME_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
export const applicationSubject = (name: string) => `events.${name}`;

/**
 * Status copies for the service that asked for a message by command (messaging.cmd.send /
 * .cmd.verify). Every status event goes to `messaging.message.<status>` for everyone; a message a
 * service requested also has its statuses copied to `messaging.notify.<service>.<status>` (same
 * data, own event id). A requester consumes only its copies, so bulk traffic it never asked about
 * does not reach it — a JetStream consumer before NATS 2.10 filters on one subject and cannot look
 * inside payloads.
 */
export const NOTIFY_PREFIX = 'messaging.notify.';
const STATUS_PREFIX = 'messaging.message.';

/** messaging.message.delivered → messaging.notify.<service>.delivered */
export function notifySubject(service: string, statusSubject: string): string {
  if (!statusSubject.startsWith(STATUS_PREFIX)) throw new Error(`${statusSubject} is not a message status subject`);
  return `${NOTIFY_PREFIX}${service}.${statusSubject.slice(STATUS_PREFIX.length)}`;
}

/**
 * The Textloop service a command came from (CloudEvent source `textloop/<service>`), the one whose
 * notify subjects get the copies; null for any other source (an outside system that publishes
 * commands reads the contract subjects).
 */
export function requesterOf(source: string): string | null {
  const m = /^textloop\/([a-z][a-z0-9-]{0,62})$/.exec(source);
  return m ? m[1]! : null;
}

/** The filter that receives every status copy for a service: messaging.notify.<service>.> */
export const notifyFilter = (service: string) => `${NOTIFY_PREFIX}${service}.>`;

/** messaging.notify.<service>.delivered → messaging.message.delivered (undefined for other subjects). */
export function statusSubjectOfNotify(subject: string): string | undefined {
  if (!subject.startsWith(NOTIFY_PREFIX)) return undefined;
  const rest = subject.slice(NOTIFY_PREFIX.length).split('.');
  return rest.length === 2 && rest[0] && rest[1] ? `${STATUS_PREFIX}${rest[1]}` : undefined;
}

/** The schema that validates `data` for a concrete subject, including `events.<name>`. */
export function schemaFor(subject: string): z.ZodTypeAny | undefined {
  if (subject.startsWith('events.')) return applicationEvent;
  const status = statusSubjectOfNotify(subject);
  if (status) return (subjects as Record<string, z.ZodTypeAny>)[status];
  return (subjects as Record<string, z.ZodTypeAny>)[subject];
}

export function isSubject(subject: string): subject is Subject {
  return subject in subjects;
}
