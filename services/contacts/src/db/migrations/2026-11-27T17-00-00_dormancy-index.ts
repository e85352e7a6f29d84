import { sql, type Kysely } from 'kysely';

/**
 * Dormancy from one composite index, so a sweep costs what it flags rather than what is dormant.
 *
 * - The inactivity spell starts at coalesce(last_active_at, created_at): the latest activity, or
 *   creation for a contact never active. (It was greatest(...), which ignored activity older than
 *   the contact's creation: a contact created today with an event that occurred 45 days ago was
 *   treated as active today.)
 * - dormant_days replaces the dormant_notified_days array: the highest threshold announced in the
 *   current spell (0: none). An integer can sit in the index, so for each threshold t the sweep
 *   reads one index range, `since <= now - t and dormant_days < t`, and visits only the rows of
 *   contacts that crossed t without being flagged for it.
 * - contacts_inactivity_idx (since, dormant_days) serves the sweep and also
 *   contacts(filter: { inactiveForDays }) (a range on its leading column). It includes the two
 *   columns since is computed from, so counting the inactive contacts can be an index-only scan.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('contacts')
    .addColumn('dormant_days', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update contacts set dormant_days = (select max(d) from unnest(dormant_notified_days) as d)
             where cardinality(dormant_notified_days) > 0`.execute(db);
  await db.schema.alterTable('contacts').dropColumn('dormant_notified_days').execute();
  await sql`drop index if exists contacts_activity_idx`.execute(db);
  await sql`create index contacts_inactivity_idx on contacts ((coalesce(last_active_at, created_at)), dormant_days)
             include (last_active_at, created_at)`.execute(db);
}
