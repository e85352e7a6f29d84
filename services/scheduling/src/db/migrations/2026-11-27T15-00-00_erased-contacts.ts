import { sql, type Kysely } from 'kysely';

/**
 * Contacts erased here (contacts.contact.deleted). The erasure consumer and the trigger consumers
 * are separate, so a deleted contact's contact.created or application events can arrive after its
 * erasure: this list lets them start nothing. Holds ids only, no personal data.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('erased_contacts')
    .addColumn('contact_id', 'text', (c) => c.primaryKey())
    .addColumn('erased_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}
