import { sql, type Kysely } from 'kysely';

/**
 * When an automation was last switched on (its creation, or setAutomationEnabled(true) after being
 * off). It reacts only to events newer than that: events from while it was off do not start runs
 * when they are read later (a consumer catching up, or the message.delivered durable that exists
 * only while an automation needs it and replays from the oldest such automation's enabled_at).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('automations').addColumn('enabled_at', 'timestamptz').execute();
  await sql`update automations set enabled_at = created_at`.execute(db);
  await sql`alter table automations alter column enabled_at set not null`.execute(db);
  await sql`alter table automations alter column enabled_at set default now()`.execute(db);
}
