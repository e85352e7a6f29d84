import { sql, type Expression, type ExpressionBuilder, type Insertable, type Kysely, type SqlBool, type Transaction } from 'kysely';
import { newId } from '@textloop/events';
import { badInput, conflict, isUniqueViolation, notFound, type ServiceDeps } from '@textloop/service-kit';
import type { ContactRow, ContactsTable, Database } from './db/database';
import { contactSnapshot, publishInTransaction } from './events/publish';
import { decodeCursor, encodeCursor, pageSize, type CursorPosition } from './pagination';
import {
  FALLBACK_TIMEZONE,
  mergeAttributes,
  parseCreateInput,
  parsePhone,
  parseUpdateInput,
  type ContactData,
  type CreateContactInput,
  type UpdateContactInput,
} from './validation';

/** What the domain modules need from the service's dependencies. */
export type ContactsDeps = Pick<ServiceDeps<Database>, 'db' | 'clock' | 'outbox' | 'logger'>;

export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Start of the current inactivity spell: the latest activity, or creation for a contact never
 * active. Activity that occurred before the contact was created (trackEvent with a past
 * occurredAt, e.g. history from the application) counts: such a contact has been inactive since
 * then. This exact expression leads contacts_inactivity_idx, which the dormancy sweep, the
 * inactiveForDays filter and the audience RPC use; keep them identical.
 */
export const spellStart = sql<Date>`coalesce(last_active_at, created_at)`;

export function contactNotFound(id: string) {
  return notFound(`No contact has id "${id}"; look it up with contacts(filter: { search }) or contactByPhone`);
}

export async function getContact(db: Kysely<Database> | Transaction<Database>, id: string): Promise<ContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function requireContact(db: Kysely<Database> | Transaction<Database>, id: string, options: { forUpdate?: boolean } = {}): Promise<ContactRow> {
  let query = db.selectFrom('contacts').selectAll().where('id', '=', id);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw contactNotFound(id);
  return row;
}

export async function getContactByPhone(db: Kysely<Database>, phone: string): Promise<ContactRow | undefined> {
  const { e164 } = parsePhone(phone, undefined, { defaultCountryAllowed: false });
  return db.selectFrom('contacts').selectAll().where('phone', '=', e164).executeTakeFirst();
}

export async function getContactByExternalId(db: Kysely<Database>, externalId: string): Promise<ContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('external_id', '=', externalId.trim()).executeTakeFirst();
}

/**
 * Coalesces the lookups made in the same turn of the event loop (e.g. the gateway resolving the
 * contact of 50 messages) into one query. Nothing is cached between turns.
 */
export function createContactLoader(db: Kysely<Database>): (id: string) => Promise<ContactRow | undefined> {
  let pending: Map<string, Array<{ resolve: (row: ContactRow | undefined) => void; reject: (err: unknown) => void }>> | undefined;
  const flush = async (batch: NonNullable<typeof pending>) => {
    try {
      const rows = await db
        .selectFrom('contacts')
        .selectAll()
        .where('id', 'in', [...batch.keys()])
        .execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const [id, waiters] of batch) for (const w of waiters) w.resolve(byId.get(id));
    } catch (err) {
      for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
    }
  };
  return (id) =>
    new Promise((resolve, reject) => {
      if (!pending) {
        const batch = new Map<string, Array<{ resolve: (row: ContactRow | undefined) => void; reject: (err: unknown) => void }>>();
        pending = batch;
        setImmediate(() => {
          pending = undefined;
          void flush(batch);
        });
      }
      const waiters = pending.get(id) ?? [];
      waiters.push({ resolve, reject });
      pending.set(id, waiters);
    });
}

/** A contact row for data that passed parseCreateInput. */
export function newContactRow(data: ContactData, now: Date, id: string = newId()): Insertable<ContactsTable> {
  return {
    id,
    external_id: data.externalId,
    phone: data.phone,
    country: data.country,
    timezone: data.timezone ?? data.derivedTimezone,
    locale: data.locale,
    first_name: data.firstName,
    last_name: data.lastName,
    email: data.email,
    attributes: JSON.stringify(data.attributes),
    tags: data.tags,
    subscribed: true,
    unsubscribed_at: null,
    phone_verified: false,
    last_active_at: null,
    dormant_days: 0,
    created_at: now,
    updated_at: now,
  };
}

/** The implicit opt-in of a new contact, so the ledger tells the whole consent story. */
export function creationLedgerRow(contactId: string, source: string, at: Date) {
  return { id: newId(), contact_id: contactId, subscribed: true, reason: 'CREATED', source, at };
}

/** CONFLICT naming the contact that already holds the phone or externalId, if any. */
export async function findConflict(db: Kysely<Database> | Transaction<Database>, phone: string, externalId: string | null) {
  const byPhone = await db.selectFrom('contacts').select('id').where('phone', '=', phone).executeTakeFirst();
  if (byPhone) {
    return conflict(
      `Contact ${byPhone.id} already has phone ${phone}; change it with updateContact(id: "${byPhone.id}") or upsert with importContacts`,
      'phone',
    );
  }
  if (externalId) {
    const byExternal = await db.selectFrom('contacts').select('id').where('external_id', '=', externalId).executeTakeFirst();
    if (byExternal) return conflict(`Contact ${byExternal.id} already has externalId "${externalId}"; externalIds are unique`, 'externalId');
  }
  return undefined;
}

/** Inserts a new contact with its ledger row and created event, inside the caller's transaction. */
export async function insertContact(trx: Transaction<Database>, deps: Pick<ContactsDeps, 'clock'>, data: ContactData, source: string): Promise<ContactRow> {
  const now = deps.clock.now();
  const row = await trx.insertInto('contacts').values(newContactRow(data, now)).returningAll().executeTakeFirstOrThrow();
  await trx
    .insertInto('consent_ledger')
    .values(creationLedgerRow(row.id, source, now))
    .execute();
  await publishInTransaction(trx, deps.clock, [{ subject: 'contacts.contact.created', data: contactSnapshot(row) }]);
  return row;
}

export async function createContact(deps: ContactsDeps, input: CreateContactInput, source: string): Promise<ContactRow> {
  const data = parseCreateInput(input);
  try {
    const row = await deps.db.transaction().execute(async (trx) => {
      const clash = await findConflict(trx, data.phone, data.externalId);
      if (clash) throw clash;
      return insertContact(trx, deps, data, source);
    });
    deps.outbox.kick();
    return row;
  } catch (err) {
    // Lost a race with a concurrent create of the same phone or externalId.
    if (isUniqueViolation(err)) throw (await findConflict(deps.db, data.phone, data.externalId)) ?? err;
    throw err;
  }
}

/** What a contact known only by its number is made of (trackEvent by phone, an inbound SMS from an unknown number). */
export function phoneOnlyContact(phone: { e164: string; country?: string; timezone?: string }): ContactData {
  return {
    phone: phone.e164,
    country: phone.country ?? null,
    derivedTimezone: phone.timezone ?? FALLBACK_TIMEZONE,
    externalId: null,
    firstName: null,
    lastName: null,
    email: null,
    locale: null,
    timezone: null,
    attributes: {},
    tags: [],
    given: { tags: false, attributes: false },
  };
}

/**
 * The contact with this phone, created through the normal create path (ledger row with `source`,
 * contacts.contact.created) when there is none. For rpc.contacts.ensure: messaging calls it for an
 * inbound SMS from a number it does not know.
 */
export async function ensureContactByPhone(deps: ContactsDeps, phone: string, source: string): Promise<{ contact: ContactRow; created: boolean }> {
  const parsed = parsePhone(phone, undefined, { defaultCountryAllowed: false });
  const find = () => deps.db.selectFrom('contacts').selectAll().where('phone', '=', parsed.e164).executeTakeFirst();
  const existing = await find();
  if (existing) return { contact: existing, created: false };
  try {
    const contact = await deps.db.transaction().execute((trx) => insertContact(trx, deps, phoneOnlyContact(parsed), source));
    deps.outbox.kick();
    return { contact, created: true };
  } catch (err) {
    // A concurrent create of the same phone won: that is the contact.
    if (!isUniqueViolation(err)) throw err;
    const winner = await find();
    if (!winner) throw err;
    return { contact: winner, created: false };
  }
}

/** The fields contacts.contact.updated reports; an update that changes none of them is not an update. */
export function sameSnapshot(a: ContactRow, b: ContactRow): boolean {
  return JSON.stringify(contactSnapshot(a)) === JSON.stringify(contactSnapshot(b));
}

export async function updateContact(deps: ContactsDeps, id: string, input: UpdateContactInput): Promise<ContactRow> {
  const patch = parseUpdateInput(input);
  const row = await deps.db.transaction().execute(async (trx) => {
    const current = await requireContact(trx, id, { forUpdate: true });
    const next: ContactRow = { ...current };
    if (patch.firstName !== undefined) next.first_name = patch.firstName;
    if (patch.lastName !== undefined) next.last_name = patch.lastName;
    if (patch.email !== undefined) next.email = patch.email;
    if (patch.locale !== undefined) next.locale = patch.locale;
    if (patch.timezone !== undefined) next.timezone = patch.timezone ?? parsePhone(current.phone).timezone ?? FALLBACK_TIMEZONE;
    if (patch.attributes !== undefined) next.attributes = mergeAttributes(current.attributes, patch.attributes);
    if (patch.tags !== undefined) next.tags = patch.tags;
    if (sameSnapshot(current, next)) return current;
    const updated = await trx
      .updateTable('contacts')
      .set({
        first_name: next.first_name,
        last_name: next.last_name,
        email: next.email,
        locale: next.locale,
        timezone: next.timezone,
        attributes: JSON.stringify(next.attributes),
        tags: next.tags,
        updated_at: deps.clock.now(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await publishInTransaction(trx, deps.clock, [{ subject: 'contacts.contact.updated', data: contactSnapshot(updated) }]);
    return updated;
  });
  deps.outbox.kick();
  return row;
}

/** Hard delete: the contact, its consent ledger and tracked events; every service erases it on contacts.contact.deleted. */
export async function deleteContact(deps: ContactsDeps, id: string): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('contacts').where('id', '=', id).returning('id').executeTakeFirst();
    if (!deleted) throw contactNotFound(id);
    await publishInTransaction(trx, deps.clock, [{ subject: 'contacts.contact.deleted', data: { contactId: id } }]);
  });
  deps.outbox.kick();
}

export interface ContactFilter {
  tag?: string | null;
  subscribed?: boolean | null;
  country?: string | null;
  inactiveForDays?: number | null;
  search?: string | null;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** inactiveForDays is a whole number of days, 1 or more (0 would match every contact). */
export function checkInactiveForDays(days: number): void {
  if (!Number.isInteger(days) || days < 1) {
    throw badInput(`inactiveForDays must be a whole number of days, 1 or more (e.g. 30); got ${days}`, 'inactiveForDays');
  }
}

/** The inactiveForDays condition; a range on the leading column of contacts_inactivity_idx. */
export function inactiveSince(days: number, now: Date): Expression<SqlBool> {
  return sql<SqlBool>`${spellStart} <= ${new Date(now.getTime() - days * DAY_MS)}`;
}

function filterConditions(eb: ExpressionBuilder<Database, 'contacts'>, filter: ContactFilter, now: Date): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [];
  if (filter.tag != null) conditions.push(sql<SqlBool>`tags @> array[${filter.tag.trim()}]::text[]`);
  if (filter.subscribed != null) conditions.push(eb('subscribed', '=', filter.subscribed));
  if (filter.country != null) conditions.push(eb('country', '=', filter.country.trim().toUpperCase()));
  if (filter.inactiveForDays != null) conditions.push(inactiveSince(filter.inactiveForDays, now));
  const search = filter.search?.trim();
  if (search) {
    const pattern = `%${escapeLike(search)}%`;
    const matches: Expression<SqlBool>[] = [
      eb('first_name', 'ilike', pattern),
      eb('last_name', 'ilike', pattern),
      eb('email', 'ilike', pattern),
      eb('phone', 'ilike', pattern),
      sql<SqlBool>`(coalesce(first_name, '') || ' ' || coalesce(last_name, '')) ilike ${pattern}`,
    ];
    // "(415) 555-01" should find +14155550100.
    const digits = search.replace(/\D/g, '');
    if (digits.length >= 3 && /^[\d\s+()\-.]+$/.test(search)) matches.push(eb('phone', 'like', `%${digits}%`));
    conditions.push(eb.or(matches));
  }
  return conditions;
}

export interface ContactPage {
  rows: ContactRow[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number;
}

/**
 * The two queries behind contacts(): one page in (created_at, id) order and the total. With
 * inactiveForDays the count is a range scan of contacts_inactivity_idx's leading column.
 */
export function contactPageQueries(db: Kysely<Database>, filter: ContactFilter, limit: number, position: CursorPosition | undefined, now: Date) {
  return {
    rows: db
      .selectFrom('contacts')
      .selectAll()
      .where((eb) =>
        eb.and([...filterConditions(eb, filter, now), ...(position ? [sql<SqlBool>`(created_at, id) > (${position.createdAt}, ${position.id})`] : [])]),
      )
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit + 1),
    count: db
      .selectFrom('contacts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where((eb) => eb.and(filterConditions(eb, filter, now))),
  };
}

export async function listContacts(
  deps: ContactsDeps,
  filter: ContactFilter | null | undefined,
  first: number | null | undefined,
  after: string | null | undefined,
): Promise<ContactPage> {
  const limit = pageSize(first);
  const position = after ? decodeCursor(after) : undefined;
  const f = filter ?? {};
  if (f.inactiveForDays != null) checkInactiveForDays(f.inactiveForDays);
  const queries = contactPageQueries(deps.db, f, limit, position, deps.clock.now());
  const [rows, count] = await Promise.all([queries.rows.execute(), queries.count.executeTakeFirstOrThrow()]);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    rows: page,
    hasNextPage: rows.length > limit,
    endCursor: last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
    totalCount: Number(count.n),
  };
}
