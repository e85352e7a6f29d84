import { sql, type Transaction } from 'kysely';
import { GraphQLError } from 'graphql';
import { badInput, conflict, isUniqueViolation } from '@textloop/service-kit';
import { creationLedgerRow, newContactRow, sameSnapshot, type ContactsDeps } from './contacts';
import type { ContactRow, ContactsTable, Database } from './db/database';
import { contactSnapshot, publishInTransaction, type ContactEvent } from './events/publish';
import { mergeAttributes, parseCreateInput, type ContactData, type CreateContactInput } from './validation';

export const MAX_IMPORT_ROWS = 10_000;
const CHUNK = 500;

export interface ImportFailure {
  index: number;
  phone: string | null;
  message: string;
}

export interface ImportResult {
  created: number;
  updated: number;
  failed: ImportFailure[];
}

interface GoodRow {
  index: number;
  data: ContactData;
}

/**
 * Upserts contacts by phone. Rows are applied in order, as if imported one by one: the first row
 * of a new phone creates the contact, every later row (in this import or an existing contact)
 * updates it — its fields overwrite, its attributes merge (null removes a key), its tags replace.
 * So a phone listed twice counts once as created and once as updated, and the last row wins
 * field by field. One created/updated event per contact with its final state; a row that changes
 * nothing counts as updated but publishes nothing. Consent is never changed by an import.
 * Everything is written in one transaction, in chunks of 500 contacts.
 */
export async function importContacts(deps: ContactsDeps, rows: CreateContactInput[], source: string): Promise<ImportResult> {
  if (rows.length > MAX_IMPORT_ROWS) {
    throw badInput(
      `importContacts takes at most ${MAX_IMPORT_ROWS.toLocaleString('en')} contacts per call and got ${rows.length.toLocaleString('en')}; split the list into batches of ${MAX_IMPORT_ROWS.toLocaleString('en')}`,
      'contacts',
    );
  }
  const failed: ImportFailure[] = [];
  const fail = (index: number, message: string) => failed.push({ index, phone: typeof rows[index]?.phone === 'string' ? rows[index]!.phone : null, message });

  const good: GoodRow[] = [];
  rows.forEach((row, index) => {
    try {
      good.push({ index, data: parseCreateInput(row) });
    } catch (err) {
      if (!(err instanceof GraphQLError)) throw err;
      fail(index, err.message);
    }
  });

  const accepted = await checkExternalIds(deps, good, fail);

  const groups = new Map<string, GoodRow[]>();
  for (const row of accepted) {
    const group = groups.get(row.data.phone);
    if (group) group.push(row);
    else groups.set(row.data.phone, [row]);
  }
  const phones = [...groups.keys()];

  let created = 0;
  let updated = 0;
  try {
    await deps.db.transaction().execute(async (trx) => {
      for (let i = 0; i < phones.length; i += CHUNK) {
        const counts = await importChunk(trx, deps, phones.slice(i, i + CHUNK), groups, source);
        created += counts.created;
        updated += counts.updated;
      }
    });
  } catch (err) {
    if (isUniqueViolation(err, 'contacts_external_id_key')) {
      throw conflict(
        'Another request gave one of these externalIds to a different contact while the import ran; nothing was imported, run the import again',
        'externalId',
      );
    }
    throw err;
  }
  deps.outbox.kick();
  failed.sort((a, b) => a.index - b.index);
  return { created, updated, failed };
}

/**
 * An externalId belongs to one phone: a row fails when an existing contact with another phone
 * holds it, or when an earlier row of this import gave it to another phone.
 */
async function checkExternalIds(deps: ContactsDeps, rows: GoodRow[], fail: (index: number, message: string) => void): Promise<GoodRow[]> {
  const wanted = [...new Set(rows.flatMap((r) => (r.data.externalId ? [r.data.externalId] : [])))];
  const owners = new Map<string, { id: string; phone: string }>();
  for (let i = 0; i < wanted.length; i += 5000) {
    const found = await deps.db
      .selectFrom('contacts')
      .select(['id', 'phone', 'external_id'])
      .where('external_id', 'in', wanted.slice(i, i + 5000))
      .execute();
    for (const f of found) owners.set(f.external_id!, { id: f.id, phone: f.phone });
  }
  const claimedBy = new Map<string, { index: number; phone: string }>();
  return rows.filter((row) => {
    const externalId = row.data.externalId;
    if (!externalId) return true;
    const owner = owners.get(externalId);
    if (owner && owner.phone !== row.data.phone) {
      fail(row.index, `externalId "${externalId}" already belongs to contact ${owner.id} (phone ${owner.phone}); externalIds are unique`);
      return false;
    }
    const claim = claimedBy.get(externalId);
    if (claim && claim.phone !== row.data.phone) {
      fail(row.index, `externalId "${externalId}" is also given to row ${claim.index} with phone ${claim.phone}; externalIds are unique`);
      return false;
    }
    if (!claim) claimedBy.set(externalId, { index: row.index, phone: row.data.phone });
    return true;
  });
}

/** Applies an import row to a contact (the existing one, or the one an earlier row created). */
function applyRow(current: ContactRow, data: ContactData): ContactRow {
  return {
    ...current,
    external_id: data.externalId ?? current.external_id,
    first_name: data.firstName ?? current.first_name,
    last_name: data.lastName ?? current.last_name,
    email: data.email ?? current.email,
    locale: data.locale ?? current.locale,
    timezone: data.timezone ?? current.timezone,
    attributes: data.given.attributes ? mergeAttributes(current.attributes, data.attributes) : current.attributes,
    tags: data.given.tags ? data.tags : current.tags,
  };
}

const CONTACT_COLUMN_TYPES = {
  id: 'text',
  external_id: 'text',
  phone: 'text',
  country: 'text',
  timezone: 'text',
  locale: 'text',
  first_name: 'text',
  last_name: 'text',
  email: 'text',
  attributes: 'jsonb',
  tags: 'text[]',
  subscribed: 'boolean',
  unsubscribed_at: 'timestamptz',
  phone_verified: 'boolean',
  last_active_at: 'timestamptz',
  dormant_days: 'integer',
  created_at: 'timestamptz',
  updated_at: 'timestamptz',
  // never changed by an import (not in the conflict update below); null for new contacts
  keyword_version: 'text',
} satisfies Record<keyof ContactsTable, string>;

const CONTACT_COLUMNS = Object.keys(CONTACT_COLUMN_TYPES) as Array<keyof ContactsTable>;
const RECORD_TYPE = sql.raw(
  Object.entries(CONTACT_COLUMN_TYPES)
    .map(([column, type]) => `${column} ${type}`)
    .join(', '),
);

async function importChunk(
  trx: Transaction<Database>,
  deps: ContactsDeps,
  phones: string[],
  groups: Map<string, GoodRow[]>,
  source: string,
): Promise<{ created: number; updated: number }> {
  const now = deps.clock.now();
  const existing = await trx.selectFrom('contacts').selectAll().where('phone', 'in', phones).orderBy('phone').forUpdate().execute();
  const byPhone = new Map(existing.map((r) => [r.phone, r]));
  let created = 0;
  let updated = 0;
  const writes: ContactRow[] = [];
  for (const phone of phones) {
    const [first, ...rest] = groups.get(phone)!;
    const before = byPhone.get(phone);
    let row: ContactRow;
    if (before) {
      row = applyRow(before, first!.data);
      updated++;
    } else {
      row = { ...(newContactRow(first!.data, now) as ContactRow), attributes: first!.data.attributes };
      created++;
    }
    for (const next of rest) row = applyRow(row, next.data);
    updated += rest.length;
    if (before && sameSnapshot(before, row)) continue;
    writes.push({ ...row, updated_at: now });
  }
  if (writes.length === 0) return { created, updated };

  // One JSON parameter instead of ~9,000 bind parameters: far cheaper to send and plan.
  const saved = await trx
    .insertInto('contacts')
    .columns(CONTACT_COLUMNS)
    .expression(
      sql`select ${sql.join(CONTACT_COLUMNS.map((c) => sql.ref(`r.${c}`)))} from jsonb_to_recordset(${JSON.stringify(writes)}::jsonb) as r(${RECORD_TYPE})`,
    )
    .onConflict((oc) =>
      // coalesce: a contact another request created after our read keeps the fields this row lacks
      // (for contacts we read, the row already carries their merged values).
      oc.column('phone').doUpdateSet(() => ({
        external_id: sql`coalesce(excluded.external_id, contacts.external_id)`,
        first_name: sql`coalesce(excluded.first_name, contacts.first_name)`,
        last_name: sql`coalesce(excluded.last_name, contacts.last_name)`,
        email: sql`coalesce(excluded.email, contacts.email)`,
        locale: sql`coalesce(excluded.locale, contacts.locale)`,
        timezone: sql`excluded.timezone`,
        attributes: sql`excluded.attributes`,
        tags: sql`excluded.tags`,
        updated_at: sql`excluded.updated_at`,
      })),
    )
    .returningAll()
    .returning(sql<boolean>`(xmax = 0)`.as('inserted'))
    .execute();

  const inserted = saved.filter((r) => r.inserted);
  // A contact another request created between our read and our write was updated, not created.
  const raced = writes.filter((w) => !byPhone.has(w.phone)).length - inserted.length;
  created -= raced;
  updated += raced;
  if (inserted.length) {
    const ledger = inserted.map((r) => creationLedgerRow(r.id, source, now));
    await trx
      .insertInto('consent_ledger')
      .columns(['id', 'contact_id', 'subscribed', 'reason', 'source', 'at'])
      .expression(
        sql`select r.id, r.contact_id, r.subscribed, r.reason, r.source, r.at from jsonb_to_recordset(${JSON.stringify(ledger)}::jsonb)
          as r(id text, contact_id text, subscribed boolean, reason text, source text, at timestamptz)`,
      )
      .execute();
  }
  const events: ContactEvent[] = saved.map(({ inserted: isNew, ...row }) =>
    isNew ? { subject: 'contacts.contact.created', data: contactSnapshot(row) } : { subject: 'contacts.contact.updated', data: contactSnapshot(row) },
  );
  await publishInTransaction(trx, deps.clock, events);
  return { created, updated };
}
