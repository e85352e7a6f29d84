import { sql, type Kysely } from 'kysely';

/** What runs need to fire (the trigger's properties), why they failed, and one-off scheduled messages. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('automation_runs')
    .addColumn('trigger_event_id', 'text')
    .addColumn('trigger_name', 'text')
    .addColumn('trigger_properties', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('failure', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  // runKey replacement and cancelOn look up the active run of (automation, contact, key).
  await sql`create index automation_runs_active_key_idx on automation_runs (automation_id, contact_id, run_key) where status = 'ACTIVE'`.execute(db);
  // One run per automation per trigger event, however often the event is delivered.
  await sql`create unique index automation_runs_trigger_uq on automation_runs (automation_id, trigger_event_id) where trigger_event_id is not null`.execute(db);

  await db.schema.alterTable('scheduled_steps').addColumn('error', 'text').execute();
  await db.schema.createIndex('scheduled_steps_run_idx').on('scheduled_steps').column('run_id').execute();

  await db.schema
    .createTable('scheduled_messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'text')
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('body', 'text')
    .addColumn('template', 'text')
    .addColumn('variables', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('send_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in ('PENDING', 'SENT', 'CANCELED', 'FAILED')`),
    )
    .addColumn('message_id', 'text')
    .addColumn('error', 'text')
    .addColumn('idempotency_key', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index scheduled_messages_due_idx on scheduled_messages (send_at) where status = 'PENDING'`.execute(db);
  await sql`create unique index scheduled_messages_idempotency_uq on scheduled_messages (idempotency_key) where idempotency_key is not null`.execute(db);
  await db.schema.createIndex('scheduled_messages_contact_idx').on('scheduled_messages').column('contact_id').execute();
}
