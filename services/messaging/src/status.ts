import { sql, type Kysely, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import { createEvent, notifySubject, type CloudEvent, type MessageStatusEventData } from '@textloop/events';
import type { Clock } from '@textloop/service-kit';
import { columnList, recordset, type Column } from './bulk';
import type { Database, MessageStatus, MessagesTable } from './db/database';

/** A message; conversation_id is only on rows read back from the table (new rows are linked by an update). */
export type MessageRow = Omit<Selectable<MessagesTable>, 'conversation_id'> & { conversation_id?: string | null };
export type Db = Kysely<Database> | Transaction<Database>;

export const EVENT_SOURCE = 'textloop/messaging';

/**
 * Provider statuses apply monotonically: a report only moves a message to a higher rank, so a
 * late SENT never overwrites DELIVERED and a duplicate DELIVERED changes nothing.
 */
const RANK: Partial<Record<MessageStatus, number>> = {
  SCHEDULED: 0,
  QUEUED: 1,
  SENDING: 2,
  SENT: 3,
  DELIVERED: 4,
  UNDELIVERED: 4,
  EXPIRED: 4,
  FAILED: 4,
};

export function rankOf(status: MessageStatus): number {
  return RANK[status] ?? Number.POSITIVE_INFINITY; // SUPPRESSED, CANCELED, RECEIVED never move
}

/** True when `next` is a step forward for a message now in `current`. */
export function advances(current: MessageStatus, next: MessageStatus): boolean {
  const from = rankOf(current);
  return Number.isFinite(from) && rankOf(next) > from;
}

/** The statuses that publish messaging.message.<status> (SENDING and RECEIVED do not). */
const EVENT_STATUSES = new Set<MessageStatus>(['QUEUED', 'SENT', 'DELIVERED', 'UNDELIVERED', 'FAILED', 'EXPIRED', 'SUPPRESSED', 'CANCELED']);

export function statusSubject(status: MessageStatus): string | undefined {
  return EVENT_STATUSES.has(status) ? `messaging.message.${status.toLowerCase()}` : undefined;
}

/** The queue and time columns of a message being created now (every row-building path starts from these). */
export function freshMessageState(now: Date) {
  return { attempts: 0, not_before: now, lease_until: null, created_at: now, updated_at: now, sent_at: null, delivered_at: null };
}

export function statusEventData(row: MessageRow): MessageStatusEventData {
  return {
    messageId: row.id,
    contactId: row.contact_id,
    to: row.to_number,
    from: row.from_number,
    category: row.category,
    status: row.status,
    segments: row.segments,
    price: row.price_amount !== null && row.price_currency ? { amount: row.price_amount, currency: row.price_currency } : null,
    provider: row.provider,
    providerMessageId: row.provider_message_id,
    errorCode: row.error_code,
    correlation: row.correlation ?? null,
  };
}

/**
 * SQL for the data of a status event (statusEventData) from a relation `r` with messages' columns;
 * `errorCode` names the column that holds the event's error code. For the statements that write
 * status changes and their events in one round trip (dispatcher, delivery reports).
 */
export function statusEventDataSql(r: string, errorCode = 'error_code'): RawBuilder<unknown> {
  const c = (column: string) => sql.raw(`${r}.${column}`);
  return sql`jsonb_build_object(
    'messageId', ${c('id')}, 'contactId', ${c('contact_id')}, 'to', ${c('to_number')}, 'from', ${c('from_number')},
    'category', ${c('category')}, 'status', ${c('status')}, 'segments', ${c('segments')},
    'price', case when ${c('price_amount')} is not null and coalesce(${c('price_currency')}, '') <> ''
                  then jsonb_build_object('amount', ${c('price_amount')}::text, 'currency', ${c('price_currency')}) end,
    'provider', ${c('provider')}, 'providerMessageId', ${c('provider_message_id')}, 'errorCode', ${c(errorCode)},
    'correlation', ${c('correlation')})`;
}

/**
 * SQL inserting into the outbox the status events listed in relation `events` (columns id, copy_id,
 * requester, status in lower case, data): messaging.message.<status> for everyone and, where the
 * message has a requester, its copy on messaging.notify.<requester>.<status> (statusEventEntries).
 */
export function insertStatusEventsSql(events: string, time: string): RawBuilder<unknown> {
  const from = sql.raw(events);
  return sql`insert into outbox (id, subject, event)
    select x.id, x.subject,
           jsonb_build_object('specversion', '1.0', 'id', x.id, 'source', ${EVENT_SOURCE}::text, 'type', x.subject,
                              'time', ${time}::text, 'datacontenttype', 'application/json', 'data', x.data)
      from (select id, 'messaging.message.' || status as subject, data from ${from}
            union all
            select copy_id, 'messaging.notify.' || requester || '.' || status, data from ${from} where requester is not null) x
     order by x.id`;
}

export interface HistoryEntry {
  messageId: string;
  status: MessageStatus;
  at: Date;
  detail?: string | null;
}

const HISTORY_COLUMNS: readonly Column[] = [
  ['message_id', 'text'],
  ['status', 'text'],
  ['at', 'timestamptz'],
  ['detail', 'text'],
];

const OUTBOX_COLUMNS: readonly Column[] = [
  ['id', 'uuid'],
  ['subject', 'text'],
  ['event', 'jsonb'],
  ['message_id', 'text'],
];

/** Columns a status change may touch. */
const MUTABLE_COLUMNS: readonly Column[] = [
  ['status', 'text'],
  ['provider', 'text'],
  ['provider_message_id', 'text'],
  ['error_code', 'text'],
  ['error_message', 'text'],
  ['not_before', 'timestamptz'],
  ['lease_until', 'timestamptz'],
  ['updated_at', 'timestamptz'],
  ['sent_at', 'timestamptz'],
  ['delivered_at', 'timestamptz'],
];

/** Every column of messages, for inserts. */
const MESSAGE_COLUMNS: readonly Column[] = [
  ['id', 'text'],
  ['direction', 'text'],
  ['category', 'text'],
  ['status', 'text'],
  ['contact_id', 'text'],
  ['to_number', 'text'],
  ['from_number', 'text'],
  ['body', 'text'],
  ['template_id', 'text'],
  ['encoding', 'text'],
  ['segments', 'integer'],
  ['country', 'text'],
  ['price_amount', 'numeric'],
  ['price_currency', 'text'],
  ['provider', 'text'],
  ['provider_message_id', 'text'],
  ['error_code', 'text'],
  ['error_message', 'text'],
  ['idempotency_key', 'text'],
  ['correlation', 'jsonb'],
  ['requester', 'text'],
  ['attempts', 'integer'],
  ['not_before', 'timestamptz'],
  ['lease_until', 'timestamptz'],
  ['created_at', 'timestamptz'],
  ['updated_at', 'timestamptz'],
  ['sent_at', 'timestamptz'],
  ['delivered_at', 'timestamptz'],
];

const historyRows = (entries: HistoryEntry[]) => entries.map((e) => ({ message_id: e.messageId, status: e.status, at: e.at, detail: e.detail ?? null }));

/**
 * The status event of a message snapshot on `subject`, and its copy for the service that requested
 * the message (messaging.notify.<requester>.<status>, packages/events) when there is one.
 */
export function statusEventEntries(row: MessageRow, subject: string): Array<{ subject: string; data: MessageStatusEventData }> {
  const data = statusEventData(row);
  const entries = [{ subject, data }];
  if (row.requester) entries.push({ subject: notifySubject(row.requester, subject), data });
  return entries;
}

/**
 * Outbox rows (the kit's table, published by the kit's relay) for the status events of these row
 * snapshots (with the requester's copies); rows whose status publishes nothing are skipped.
 */
function statusEvents(rows: MessageRow[], clock: Clock): Array<{ id: string; subject: string; event: CloudEvent; message_id: string }> {
  const time = clock.now();
  const out = [];
  for (const row of rows) {
    const subject = statusSubject(row.status);
    if (!subject) continue;
    for (const entry of statusEventEntries(row, subject)) {
      const event = createEvent({ source: EVENT_SOURCE, type: entry.subject, data: entry.data, time });
      out.push({ id: event.id, subject: entry.subject, event, message_id: row.id });
    }
  }
  return out;
}

export interface Changes {
  /** New states of rows this transaction has locked (mutable columns only are written). */
  rows?: MessageRow[];
  history?: HistoryEntry[];
  /** Row snapshots whose status is announced with messaging.message.<status>. */
  announce?: MessageRow[];
}

/**
 * Writes status changes, their history and their events in ONE statement (data-modifying CTEs
 * over jsonb_to_recordset), so a batch of any size costs one round trip and the three commit
 * together. Same SQL on Postgres and PGlite.
 */
export async function writeChanges(db: Db, changes: Changes, clock: Clock): Promise<void> {
  const parts: RawBuilder<unknown>[] = [];
  const rows = changes.rows ?? [];
  const history = changes.history ?? [];
  const events = statusEvents(changes.announce ?? [], clock);
  if (rows.length) {
    const setList = sql.join(MUTABLE_COLUMNS.map(([col]) => sql`${sql.ref(col)} = uv.${sql.ref(col)}`));
    // Only the mutable columns travel (a full row would carry the body too).
    const slim = rows.map((r) => ({
      id: r.id,
      status: r.status,
      provider: r.provider,
      provider_message_id: r.provider_message_id,
      error_code: r.error_code,
      error_message: r.error_message,
      not_before: r.not_before,
      lease_until: r.lease_until,
      updated_at: r.updated_at,
      sent_at: r.sent_at,
      delivered_at: r.delivered_at,
    }));
    parts.push(sql`u as (update messages m set ${setList} from ${recordset([['id', 'text'], ...MUTABLE_COLUMNS], slim, 'uv')} where m.id = uv.id)`);
  }
  if (history.length) {
    const cols = columnList(HISTORY_COLUMNS);
    parts.push(sql`h as (insert into message_status_history (${cols}) select ${cols} from ${recordset(HISTORY_COLUMNS, historyRows(history), 'hv')})`);
  }
  if (events.length) {
    parts.push(sql`o as (insert into outbox (id, subject, event) select id, subject, event from ${recordset(OUTBOX_COLUMNS, events, 'ov')})`);
  }
  if (parts.length === 0) return;
  await sql`with ${sql.join(parts)} select 1`.execute(db);
}

/**
 * Inserts new messages with their first history entry and status event in ONE statement; a row
 * whose idempotency key is taken is skipped (with its history and event). Returns the inserted ids.
 */
export async function insertMessages(db: Db, rows: MessageRow[], history: HistoryEntry[], clock: Clock): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const cols = columnList(MESSAGE_COLUMNS);
  const hcols = columnList(HISTORY_COLUMNS);
  const events = statusEvents(rows, clock);
  const result = await sql<{ id: string }>`
    with ins as (
      insert into messages (${cols}) select ${cols} from ${recordset(MESSAGE_COLUMNS, rows, 'mv')}
      on conflict (idempotency_key) where idempotency_key is not null do nothing
      returning id
    ), h as (
      insert into message_status_history (${hcols})
      select hv.message_id, hv.status, hv.at, hv.detail from ${recordset(HISTORY_COLUMNS, historyRows(history), 'hv')} join ins on ins.id = hv.message_id
    ), o as (
      insert into outbox (id, subject, event)
      select ov.id, ov.subject, ov.event from ${recordset(OUTBOX_COLUMNS, events, 'ov')} join ins on ins.id = ov.message_id
    )
    select id from ins`.execute(db);
  return new Set(result.rows.map((r) => r.id));
}

/** Locks rows in id order (so concurrent batches never deadlock) and returns them by id. */
export async function lockMessages(db: Db, ids: string[]): Promise<Map<string, MessageRow>> {
  const out = new Map<string, MessageRow>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('messages')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .orderBy('id')
    .forUpdate()
    .execute();
  for (const r of rows) out.set(r.id, r);
  return out;
}

/** Retries a transaction that lost a deadlock or serialization race; those are safe to rerun. */
export async function withRetry<T>(work: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (i >= attempts || (code !== '40P01' && code !== '40001')) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 20));
    }
  }
}
