import { sql, type Kysely } from 'kysely';

/**
 * Support conversations: one per contact (it reopens rather than multiplying), and the link from a
 * message to the conversation it belongs to.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'text', (c) => c.notNull().unique())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('OPEN', 'PENDING', 'RESOLVED')`))
    .addColumn('assignee', 'text')
    .addColumn('last_message_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('resolved_at', 'timestamptz')
    .execute();

  // The inbox: newest activity first, keyset-paginated on (last_message_at, id), all or by status or by assignee.
  await db.schema.createIndex('conversations_activity_idx').on('conversations').columns(['last_message_at desc', 'id desc']).execute();
  await db.schema.createIndex('conversations_status_activity_idx').on('conversations').columns(['status', 'last_message_at desc', 'id desc']).execute();
  await db.schema.createIndex('conversations_assignee_activity_idx').on('conversations').columns(['assignee', 'last_message_at desc', 'id desc']).execute();

  // Deleting a conversation (the contact was erased) unlinks its messages; the rows stay.
  await db.schema
    .alterTable('messages')
    .addColumn('conversation_id', 'text', (c) => c.references('conversations.id').onDelete('set null'))
    .execute();
  // A thread, oldest first. Partial: most messages (campaigns, OTP, reminders) belong to none.
  await db.schema
    .createIndex('messages_conversation_idx')
    .on('messages')
    .columns(['conversation_id', 'created_at', 'id'])
    .where(sql.ref('conversation_id'), 'is not', null)
    .execute();
}
