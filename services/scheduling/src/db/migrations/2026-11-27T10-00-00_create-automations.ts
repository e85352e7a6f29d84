import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('automations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('trigger_event', 'text', (c) => c.notNull())
    .addColumn('trigger_filter', 'jsonb')
    .addColumn('run_key', 'text')
    .addColumn('cancel_on', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('steps', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('automations_trigger_event_idx').on('automations').column('trigger_event').execute();

  await db.schema
    .createTable('automation_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('automation_id', 'text', (c) => c.notNull().references('automations.id').onDelete('cascade'))
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('ACTIVE')
        .check(sql`status in ('ACTIVE', 'COMPLETED', 'CANCELED', 'REPLACED', 'FAILED')`),
    )
    .addColumn('run_key', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('automation_runs_contact_idx').on('automation_runs').columns(['contact_id', 'created_at']).execute();
  await db.schema.createIndex('automation_runs_automation_idx').on('automation_runs').columns(['automation_id', 'created_at']).execute();

  await db.schema
    .createTable('scheduled_steps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().references('automation_runs.id').onDelete('cascade'))
    .addColumn('step_index', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('due_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in ('PENDING', 'DONE', 'SKIPPED', 'CANCELED', 'FAILED')`),
    )
    .addColumn('message_id', 'text')
    .addColumn('executed_at', 'timestamptz')
    .addUniqueConstraint('scheduled_steps_run_index_uq', ['run_id', 'step_index'])
    .execute();
  // The timer scan: pending steps by due time.
  await db.schema.createIndex('scheduled_steps_due_idx').on('scheduled_steps').column('due_at').where(sql.ref('status'), '=', 'PENDING').execute();
}
