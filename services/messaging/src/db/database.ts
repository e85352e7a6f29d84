import type { ColumnType, Generated } from 'kysely';

/** Written as Date (or ISO string), read back as Date. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** jsonb: written as a JSON string (so arrays are not mistaken for Postgres arrays), read back parsed. */
export type Json<T> = ColumnType<T, string, string>;
/** jsonb with a database default: may be left out of an insert. */
export type JsonWithDefault<T> = ColumnType<T, string | undefined, string>;

export type MessageDirection = 'OUTBOUND' | 'INBOUND';
export type MessageCategory = 'TRANSACTIONAL' | 'MARKETING' | 'OTP' | 'SURVEY' | 'SUPPORT';
export type MessageStatus =
  'SCHEDULED' | 'QUEUED' | 'SENDING' | 'SENT' | 'DELIVERED' | 'UNDELIVERED' | 'FAILED' | 'EXPIRED' | 'SUPPRESSED' | 'CANCELED' | 'RECEIVED';
export type Encoding = 'GSM7' | 'UCS2';

export interface TemplatesTable {
  id: string;
  name: string;
  body: string;
  category: MessageCategory;
  variables: Json<string[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ContactsTable {
  id: string;
  phone: string;
  external_id: string | null;
  country: string | null;
  timezone: string | null;
  locale: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  attributes: JsonWithDefault<Record<string, unknown>>;
  tags: JsonWithDefault<string[]>;
  subscribed: Generated<boolean>;
  phone_verified: Generated<boolean>;
  /** null for a stub that only a consent event has written so far */
  profile_version: string | null;
  consent_version: string | null;
  updated_at: Timestamp;
}

export interface ErasedContactsTable {
  contact_id: string;
  erased_at: Timestamp;
}

export interface MessagesTable {
  id: string;
  direction: MessageDirection;
  category: MessageCategory;
  status: MessageStatus;
  contact_id: string | null;
  to_number: string;
  from_number: string;
  body: string;
  template_id: string | null;
  encoding: Encoding;
  segments: number;
  /** destination country (outbound) or sender country (inbound), ISO alpha-2 */
  country: string | null;
  /** numeric, read as an exact decimal string */
  price_amount: string | null;
  price_currency: string | null;
  provider: string | null;
  provider_message_id: string | null;
  error_code: string | null;
  error_message: string | null;
  idempotency_key: string | null;
  correlation: Json<Record<string, unknown> | null> | null;
  /** the service that asked for it by command; its statuses are copied to messaging.notify.<requester>.<status> */
  requester: string | null;
  attempts: Generated<number>;
  /** due time for QUEUED; lease expiry for SENDING */
  not_before: Timestamp;
  lease_until: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  sent_at: Timestamp | null;
  delivered_at: Timestamp | null;
  /** the support conversation it belongs to (inbound messages of a thread and agents' replies) */
  conversation_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface MessageStatusHistoryTable {
  id: Generated<number>;
  message_id: string;
  status: MessageStatus;
  at: Timestamp;
  detail: string | null;
}

export type VerificationStatus = 'PENDING' | 'APPROVED' | 'EXPIRED' | 'FAILED' | 'CANCELED';

export interface VerificationsTable {
  id: string;
  /** E.164 number the code was sent to */
  to_number: string;
  contact_id: string | null;
  status: VerificationStatus;
  code_length: number;
  /** per-verification random salt (hex) and scrypt hash (hex) of the code; the code itself is never stored */
  code_salt: string;
  code_hash: string;
  /** wrong codes checked so far */
  attempts: Generated<number>;
  /** messages sent with this code (first send included) */
  sends: Generated<number>;
  /** messaging.cmd.verify requestId */
  request_id: string | null;
  expires_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** The messaging policy: at most one row (id 1); no row means the defaults. */
export interface MessagingPolicyTable {
  id: Generated<number>;
  /** HH:MM, recipient's local time */
  quiet_hours_start: string;
  quiet_hours_end: string;
  marketing_weekly_cap: number;
  updated_at: Timestamp;
}

/** What a SCHEDULED message waits for, when it is the policy (quiet hours) rather than a chosen time. */
export interface MessageWaitsTable {
  message_id: string;
  waiting_for: 'QUIET_HOURS';
}

/** An automatic answer to a STOP/START/HELP keyword: exempt from opt-out suppression, never an inReplyTo. */
export interface KeywordRepliesTable {
  message_id: string;
  inbound_message_id: string;
  keyword: 'STOP' | 'START' | 'HELP';
}

export type ConversationStatus = 'OPEN' | 'PENDING' | 'RESOLVED';

/** A contact's support conversation: at most one per contact, reopened by new activity. */
export interface ConversationsTable {
  id: string;
  contact_id: string;
  /** OPEN: waiting for an agent; PENDING: answered, waiting for the customer; RESOLVED: done */
  status: ConversationStatus;
  assignee: string | null;
  last_message_at: Timestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  resolved_at: Timestamp | null;
}

/** A detractor's survey score (and later comment) shown on the contact's conversation; never sent. */
export interface ConversationFeedbackTable {
  /** feedback's survey response id */
  response_id: string;
  conversation_id: string;
  survey_id: string;
  score: number;
  comment: string | null;
  /** when the score arrived (the feedback event's time) */
  at: Timestamp;
  commented_at: Timestamp | null;
}

export interface Database {
  templates: TemplatesTable;
  contacts: ContactsTable;
  erased_contacts: ErasedContactsTable;
  messages: MessagesTable;
  message_status_history: MessageStatusHistoryTable;
  messaging_policy: MessagingPolicyTable;
  message_waits: MessageWaitsTable;
  verifications: VerificationsTable;
  keyword_replies: KeywordRepliesTable;
  conversations: ConversationsTable;
  conversation_feedback: ConversationFeedbackTable;
}
