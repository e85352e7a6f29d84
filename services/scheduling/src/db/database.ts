import type { ColumnType, Generated } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb: written as a JSON string, read back as the parsed value. */
type Json<T> = ColumnType<T, string, string>;

export type AutomationStepType = 'SEND_MESSAGE' | 'START_VERIFICATION' | 'SEND_SURVEY';
export type MessageCategory = 'TRANSACTIONAL' | 'MARKETING' | 'OTP' | 'SURVEY' | 'SUPPORT';
export type RunStatus = 'ACTIVE' | 'COMPLETED' | 'CANCELED' | 'REPLACED' | 'FAILED';
export type StepStatus = 'PENDING' | 'DONE' | 'SKIPPED' | 'CANCELED' | 'FAILED';

/** One element of automations.steps, stored with the GraphQL field names. */
export interface StoredStep {
  type: AutomationStepType;
  template?: string | null;
  category?: MessageCategory | null;
  surveyId?: string | null;
  delay?: string | null;
  relativeTo?: string | null;
  offset?: string | null;
  offer?: { codePrefix: string; discountPercent?: number | null; validDays: number } | null;
}

export interface AutomationsTable {
  id: string;
  name: string;
  enabled: Generated<boolean>;
  trigger_event: string;
  trigger_filter: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  run_key: string | null;
  cancel_on: ColumnType<string[], string[] | undefined, string[]>;
  steps: Json<StoredStep[]>;
  created_at: CreatedAt;
}

export interface AutomationRunsTable {
  id: string;
  automation_id: string;
  contact_id: string;
  status: ColumnType<RunStatus, RunStatus | undefined, RunStatus>;
  run_key: string | null;
  created_at: CreatedAt;
  /** id of the CloudEvent that started the run: redelivery starts no second run */
  trigger_event_id: string | null;
  trigger_name: string | null;
  /** the trigger's properties, for event.* in templates and relativeTo */
  trigger_properties: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** why the run FAILED */
  failure: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** The durable timers: one row per step of a run, claimed when due. */
export interface ScheduledStepsTable {
  id: string;
  run_id: string;
  step_index: number;
  type: AutomationStepType;
  due_at: Timestamp;
  status: ColumnType<StepStatus, StepStatus | undefined, StepStatus>;
  message_id: string | null;
  executed_at: NullableTimestamp;
  /** why the step FAILED */
  error: ColumnType<string | null, string | null | undefined, string | null>;
}

export type ScheduledMessageStatus = 'PENDING' | 'SENT' | 'CANCELED' | 'FAILED';

/** One-off messages for a future time (scheduleMessage); also durable timers. */
export interface ScheduledMessagesTable {
  id: string;
  contact_id: string | null;
  to_number: string;
  body: string | null;
  template: string | null;
  variables: ColumnType<Record<string, unknown>, string | undefined, string>;
  category: MessageCategory;
  send_at: Timestamp;
  status: ColumnType<ScheduledMessageStatus, ScheduledMessageStatus | undefined, ScheduledMessageStatus>;
  message_id: string | null;
  error: string | null;
  idempotency_key: string | null;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** Contacts erased on contacts.contact.deleted: their late events start nothing, they can be scheduled nothing. */
export interface ErasedContactsTable {
  contact_id: string;
  erased_at: CreatedAt;
}

export interface Database {
  automations: AutomationsTable;
  automation_runs: AutomationRunsTable;
  scheduled_steps: ScheduledStepsTable;
  scheduled_messages: ScheduledMessagesTable;
  erased_contacts: ErasedContactsTable;
}
