import { sql, type Kysely } from 'kysely';

/**
 * The survey flow (surveys issue): invitations (one survey sent to one contact), the responses'
 * link to them, and erasure that keeps the anonymous score.
 *
 * survey_invitations.status is the contract's InvitationStatus:
 *   SENT       question sent, waiting for the score (awaiting = 'score')
 *   ANSWERED   score recorded, follow-up sent, waiting for the comment (awaiting = 'comment')
 *   COMPLETED  nothing more expected (thanks sent, or the comment window closed after the score)
 *   EXPIRED    the response window closed without a score
 *   FAILED     never sent (e.g. the contact had unsubscribed, or messaging could not send the question)
 * SENT and ANSWERED are "open"; at most one open invitation per survey and contact.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('survey_invitations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('survey_id', 'text', (c) => c.notNull().references('surveys.id').onDelete('cascade'))
    // null once the contact is erased (the invitation still counts in the response rate)
    .addColumn('contact_id', 'text')
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('SENT')
        .check(sql`status in ('SENT', 'ANSWERED', 'COMPLETED', 'EXPIRED', 'FAILED')`),
    )
    // feedback.cmd.send_survey requestId: the same command never invites twice (null for sendSurvey)
    .addColumn('request_id', 'text', (c) => c.unique())
    .addColumn('reprompted', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('awaiting', 'text', (c) => c.check(sql`awaiting in ('score', 'comment')`))
    // the survey's touchpoint when it was sent
    .addColumn('touchpoint', 'text')
    // why a FAILED invitation was not sent, e.g. UNSUBSCRIBED
    .addColumn('failure_reason', 'text')
    // the requester's correlation of feedback.cmd.send_survey (e.g. the automation run)
    .addColumn('correlation', 'jsonb')
    .addColumn('sent_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index survey_invitations_contact_idx on survey_invitations (contact_id, status, sent_at desc)`.execute(db);
  // One open invitation per survey and contact; a concurrent second sendSurvey fails on this (CONFLICT).
  await sql`create unique index survey_invitations_open_idx on survey_invitations (survey_id, contact_id) where status in ('SENT', 'ANSWERED')`.execute(db);
  // The expiry sweep reads open invitations by their end.
  await sql`create index survey_invitations_expiry_idx on survey_invitations (expires_at) where status in ('SENT', 'ANSWERED')`.execute(db);

  await db.schema
    .alterTable('survey_responses')
    .addColumn('invitation_id', 'text', (c) => c.references('survey_invitations.id').onDelete('set null'))
    .execute();
  await db.schema.alterTable('survey_responses').addColumn('category', 'text').execute();
  await db.schema.alterTable('survey_responses').addColumn('touchpoint', 'text').execute();
  await sql`update survey_responses set category = case when score >= 9 then 'PROMOTER' when score >= 7 then 'PASSIVE' else 'DETRACTOR' end`.execute(db);
  await sql`update survey_responses r set touchpoint = s.touchpoint from surveys s where s.id = r.survey_id`.execute(db);
  // The category always follows the score (the buckets of nps.ts), whoever writes the row.
  await sql`
    create function survey_response_category() returns trigger language plpgsql as $$
    begin
      new.category := case when new.score >= 9 then 'PROMOTER' when new.score >= 7 then 'PASSIVE' else 'DETRACTOR' end;
      return new;
    end
    $$`.execute(db);
  await sql`
    create trigger survey_responses_category before insert or update of score on survey_responses
    for each row execute function survey_response_category()`.execute(db);
  await sql`alter table survey_responses alter column category set not null`.execute(db);
  await sql`alter table survey_responses add constraint survey_responses_category_check check (category in ('PROMOTER', 'PASSIVE', 'DETRACTOR'))`.execute(db);
  // Erasure keeps the anonymous score: the personal link goes, the row stays.
  await sql`alter table survey_responses alter column contact_id drop not null`.execute(db);
  await sql`create unique index survey_responses_invitation_idx on survey_responses (invitation_id)`.execute(db);

  // Contacts erased here: a send or reply racing the erasure writes nothing for them. Ids only.
  await db.schema
    .createTable('erased_contacts')
    .addColumn('contact_id', 'text', (c) => c.primaryKey())
    .addColumn('erased_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}
