import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('external_id', 'text')
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('country', 'text')
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('locale', 'text')
    .addColumn('first_name', 'text')
    .addColumn('last_name', 'text')
    .addColumn('email', 'text')
    .addColumn('attributes', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('tags', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('subscribed', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('unsubscribed_at', 'timestamptz')
    .addColumn('phone_verified', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('last_active_at', 'timestamptz')
    .addColumn('dormant_notified_days', sql`integer[]`, (c) => c.notNull().defaultTo(sql`'{}'::integer[]`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('contacts_phone_key', ['phone'])
    .execute();
  await sql`create unique index contacts_external_id_key on contacts (external_id) where external_id is not null`.execute(db);
  await sql`create index contacts_tags_idx on contacts using gin (tags)`.execute(db);
  await sql`create index contacts_created_at_id_idx on contacts (created_at, id)`.execute(db);
  // Start of the current inactivity spell: used by the dormancy sweep and the inactiveForDays filter.
  await sql`create index contacts_activity_idx on contacts ((greatest(last_active_at, created_at)))`.execute(db);

  await db.schema
    .createTable('consent_ledger')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
    .addColumn('subscribed', 'boolean', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index consent_ledger_contact_idx on consent_ledger (contact_id, at)`.execute(db);

  await db.schema
    .createTable('tracked_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('properties', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create unique index tracked_events_idempotency_key on tracked_events (idempotency_key) where idempotency_key is not null`.execute(db);
  await sql`create index tracked_events_contact_idx on tracked_events (contact_id, occurred_at)`.execute(db);
}
