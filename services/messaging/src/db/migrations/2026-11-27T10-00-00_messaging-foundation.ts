import { sql, type Kysely } from 'kysely';

/** Templates, the contact projection, messages (the outbound queue) and their status history. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('templates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('variables', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();

  // What messaging knows about a contact, fed by contacts.contact.* events. profile_version and
  // consent_version order out-of-order deliveries; a row with only consent_version is a stub
  // created by a consent event that overtook contacts.contact.created.
  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text')
    .addColumn('country', 'text')
    .addColumn('timezone', 'text')
    .addColumn('locale', 'text')
    .addColumn('first_name', 'text')
    .addColumn('last_name', 'text')
    .addColumn('email', 'text')
    .addColumn('attributes', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('tags', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('subscribed', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('phone_verified', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('profile_version', 'text')
    .addColumn('consent_version', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('contacts_phone_idx').on('contacts').column('phone').execute();

  // Tombstones: a late contacts.contact.updated must not resurrect an erased contact.
  await db.schema
    .createTable('erased_contacts')
    .addColumn('contact_id', 'text', (c) => c.primaryKey())
    .addColumn('erased_at', 'timestamptz', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('direction', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text')
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('from_number', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('template_id', 'text')
    .addColumn('encoding', 'text', (c) => c.notNull())
    .addColumn('segments', 'integer', (c) => c.notNull())
    .addColumn('country', 'text')
    .addColumn('price_amount', 'numeric')
    .addColumn('price_currency', 'text')
    .addColumn('provider', 'text')
    .addColumn('provider_message_id', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('idempotency_key', 'text')
    .addColumn('correlation', 'jsonb')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('not_before', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addColumn('delivered_at', 'timestamptz')
    .execute();
  // A repeated sendMessage idempotency key, messaging.cmd.send requestId or inbound report. Partial:
  // most messages have no key, and every (non-HOT) status update would otherwise index a NULL again.
  await sql`create unique index messages_idempotency_key_idx on messages (idempotency_key) where idempotency_key is not null`.execute(db);
  // The dispatcher's claim: due QUEUED rows and SENDING rows whose lease (kept in not_before) expired.
  await sql`create index messages_due_idx on messages (not_before) where status in ('QUEUED', 'SENDING')`.execute(db);
  // Messages waiting for their time (quiet hours, one-off schedules): released into the queue when due.
  await sql`create index messages_scheduled_idx on messages (not_before) where status = 'SCHEDULED'`.execute(db);
  // Delivery reports that arrive without our id.
  await sql`create index messages_provider_message_id_idx on messages (provider_message_id) where provider_message_id is not null`.execute(db);
  // Contact.messages and per-contact history, newest first.
  await sql`create index messages_contact_created_idx on messages (contact_id, created_at, id) where contact_id is not null`.execute(db);
  // messages(filter) pagination and messagingStats time windows.
  await sql`create index messages_created_idx on messages (created_at, id)`.execute(db);
  // inReplyTo: the latest outbound message to the number a reply comes from.
  await sql`create index messages_outbound_to_idx on messages (to_number, created_at) where direction = 'OUTBOUND'`.execute(db);

  await db.schema
    .createTable('message_status_history')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('message_status_history_message_idx').on('message_status_history').columns(['message_id', 'at', 'id']).execute();
}
