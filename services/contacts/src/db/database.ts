import type { ColumnType, Selectable } from 'kysely';

/** A JSON object column: read as an object, written as its JSON text (so arrays are never mistaken for SQL arrays). */
type JsonObject = ColumnType<Record<string, unknown>, string, string>;

export interface ContactsTable {
  id: string;
  /** The application's own id; unique when set. */
  external_id: string | null;
  /** E.164; unique. */
  phone: string;
  country: string | null;
  timezone: string;
  locale: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  attributes: JsonObject;
  tags: string[];
  subscribed: boolean;
  unsubscribed_at: Date | null;
  phone_verified: boolean;
  last_active_at: Date | null;
  /**
   * The highest dormancy threshold (days) announced in the current inactivity spell, 0 when none.
   * The spell starts at coalesce(last_active_at, created_at); activity after that start ends it
   * and resets this to 0.
   */
  dormant_days: ColumnType<number, number | undefined, number>;
  created_at: Date;
  updated_at: Date;
  /**
   * Order of the latest STOP/START keyword applied to consent ("<ms, 15 digits>:<inbound message id>",
   * from messaging's receive time); an older keyword processed later is ignored. Null: none yet.
   */
  keyword_version: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Every change of consent, including the implicit opt-in when the contact was created. */
export interface ConsentLedgerTable {
  id: string;
  contact_id: string;
  subscribed: boolean;
  /** CREATED, API, STOP_KEYWORD, START_KEYWORD… */
  reason: string;
  /** Who made the change: graphql[:<api key name>], import, trackEvent, sms… */
  source: string;
  at: Date;
}

export interface TrackedEventsTable {
  id: string;
  contact_id: string;
  name: string;
  properties: JsonObject;
  occurred_at: Date;
  /** Cleared once the 24 h window has passed and the key is reused. */
  idempotency_key: string | null;
  created_at: Date;
}

export interface Database {
  contacts: ContactsTable;
  consent_ledger: ConsentLedgerTable;
  tracked_events: TrackedEventsTable;
}

export type ContactRow = Selectable<ContactsTable>;
export type ConsentRow = Selectable<ConsentLedgerTable>;
export type TrackedEventRow = Selectable<TrackedEventsTable>;
