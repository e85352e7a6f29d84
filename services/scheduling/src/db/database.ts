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
  offer?: StoredOffer | null;
}

/** An offer as stored on a step or a campaign, with the GraphQL field names. */
export interface StoredOffer {
  codePrefix: string;
  discountPercent: number | null;
  validDays: number;
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
  /** advice given when the automation was created (e.g. an offer the template does not show) */
  warnings: ColumnType<string[], string | undefined, string>;
  created_at: CreatedAt;
  /** when it was last switched on (creation, or enabled after being off): it reacts to events newer than this */
  enabled_at: ColumnType<Date, Date | string | undefined, Date | string>;
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

export type CampaignStatus = 'DRAFT' | 'SCHEDULED' | 'RUNNING' | 'COMPLETED' | 'CANCELED';
export type RecipientStatus = 'PENDING' | 'SENT' | 'CANCELED';

/** Who a campaign is for; the criteria are passed to rpc.contacts.audience (always subscribed only). */
export interface StoredAudience {
  tags?: string[] | null;
  inactiveForDays?: number | null;
  country?: string | null;
  contactIds?: string[] | null;
}

export interface CampaignsTable {
  id: string;
  name: string;
  status: ColumnType<CampaignStatus, CampaignStatus | undefined, CampaignStatus>;
  template: string;
  category: MessageCategory;
  audience: Json<StoredAudience>;
  offer: ColumnType<StoredOffer | null, string | null | undefined, string | null>;
  warnings: ColumnType<string[], string | undefined, string>;
  send_at: NullableTimestamp;
  /** JSON of the resolution's position (see campaigns.ts); null before the first page */
  resolve_cursor: ColumnType<string | null, string | null | undefined, string | null>;
  /** an instance resolving the audience holds it until then; null: free to take */
  resolve_lease_until: NullableTimestamp;
  /** the last failure to resolve (contacts unreachable…); retried */
  resolve_error: ColumnType<string | null, string | null | undefined, string | null>;
  resolved_at: NullableTimestamp;
  /** how many recipients the resolution found; null until it ends */
  recipients: ColumnType<number | null, number | null | undefined, number | null>;
  launched_at: NullableTimestamp;
  completed_at: NullableTimestamp;
  canceled_at: NullableTimestamp;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** One contact of a campaign's audience: sent once (requestId = id), then followed by messaging's events. */
export interface CampaignRecipientsTable {
  id: string;
  campaign_id: string;
  /** null once the contact was erased */
  contact_id: string | null;
  status: ColumnType<RecipientStatus, RecipientStatus | undefined, RecipientStatus>;
  offer_code: ColumnType<string | null, string | null | undefined, string | null>;
  message_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** the latest status messaging reported (by rank, see attribution.ts) */
  message_status: ColumnType<string | null, string | null | undefined, string | null>;
  message_rank: ColumnType<number, number | undefined, number>;
  /** numeric: read back as a decimal string */
  price_amount: ColumnType<string | null, string | null | undefined, string | null>;
  price_currency: ColumnType<string | null, string | null | undefined, string | null>;
  sent_at: NullableTimestamp;
  /** activity and STOPs until then count for this campaign: the offer's expiry, or sent_at + 30 days */
  attribution_until: NullableTimestamp;
  replied_at: NullableTimestamp;
  opted_out_at: NullableTimestamp;
  reactivated_at: NullableTimestamp;
  created_at: CreatedAt;
}

/** A personal offer code: issued when its message is fired, redeemed by a tracked event carrying it. */
export interface OfferCodesTable {
  code: string;
  contact_id: string | null;
  campaign_id: string | null;
  campaign_recipient_id: string | null;
  automation_id: string | null;
  run_id: string | null;
  step_id: string | null;
  /** the message that carried it, once messaging reported it */
  message_id: ColumnType<string | null, string | null | undefined, string | null>;
  discount_percent: number | null;
  created_at: Timestamp;
  expires_at: Timestamp;
  redeemed_at: NullableTimestamp;
  redeemed_event_id: ColumnType<string | null, string | null | undefined, string | null>;
  reactivated_at: NullableTimestamp;
}

/** The global send budget of campaigns: one row, id 'global'. */
export interface CampaignPacerTable {
  id: string;
  paced_until: NullableTimestamp;
}

export interface Database {
  automations: AutomationsTable;
  automation_runs: AutomationRunsTable;
  scheduled_steps: ScheduledStepsTable;
  scheduled_messages: ScheduledMessagesTable;
  erased_contacts: ErasedContactsTable;
  campaigns: CampaignsTable;
  campaign_recipients: CampaignRecipientsTable;
  offer_codes: OfferCodesTable;
  campaign_pacer: CampaignPacerTable;
}
