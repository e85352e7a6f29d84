import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('surveys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('question', 'text', (c) => c.notNull())
    .addColumn('follow_up', 'text')
    .addColumn('thank_you', 'text')
    .addColumn('touchpoint', 'text')
    .addColumn('response_window', 'text', (c) => c.notNull().defaultTo('P3D'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('survey_responses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('survey_id', 'text', (c) => c.notNull().references('surveys.id').onDelete('cascade'))
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('score', 'integer', (c) => c.notNull().check(sql`score between 0 and 10`))
    .addColumn('comment', 'text')
    .addColumn('responded_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('survey_responses_contact_idx').on('survey_responses').columns(['contact_id', 'responded_at']).execute();
  await db.schema.createIndex('survey_responses_survey_idx').on('survey_responses').columns(['survey_id', 'responded_at']).execute();
}
