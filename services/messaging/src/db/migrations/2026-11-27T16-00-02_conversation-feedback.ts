import { sql, type Kysely } from 'kysely';

/**
 * Survey feedback shown in a support conversation: a detractor's score (feedback.detractor.detected)
 * and the comment that follows it (feedback.comment.recorded). Agents see it on the conversation; it
 * is not a message, so nothing of it is ever sent to the handset. Rows go with their conversation
 * (the contact's erasure deletes the conversation).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('conversation_feedback')
    .addColumn('response_id', 'text', (c) => c.primaryKey())
    .addColumn('conversation_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('survey_id', 'text', (c) => c.notNull())
    .addColumn('score', 'integer', (c) => c.notNull().check(sql`score between 0 and 10`))
    .addColumn('comment', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('commented_at', 'timestamptz')
    .execute();
  // A conversation's feedback, oldest first.
  await db.schema.createIndex('conversation_feedback_conversation_idx').on('conversation_feedback').columns(['conversation_id', 'at', 'response_id']).execute();
}
