import { sql, type Kysely } from 'kysely';

/**
 * Indexes for npsReport (nps-report.ts): with a survey or a window the report reads an index-only
 * scan of one of these (the key serves the filter, the INCLUDEd columns are everything the
 * aggregates read); with no filter at all a parallel sequential scan of the table is cheaper.
 *
 * - survey_responses (survey_id, responded_at) INCLUDE (category, touchpoint): one survey, any
 *   window. Replaces survey_responses_survey_idx (same key, which it serves as well).
 * - survey_responses (responded_at) INCLUDE (survey_id, category, touchpoint): every survey, a window.
 * - survey_invitations, the same pair over sent_at for the invitation count, partial on
 *   status <> 'FAILED' (a failed invitation was never sent and does not count).
 * - Statistics on the report's grouping (UTC day, survey, touchpoint): without them the planner
 *   takes the day expression for as many groups as rows and sorts a million rows on disk instead of
 *   hash-aggregating a few thousand groups. The expression is the one nps-report.ts groups by.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists survey_responses_survey_idx`.execute(db);
  await sql`create index survey_responses_report_survey_idx on survey_responses (survey_id, responded_at) include (category, touchpoint)`.execute(db);
  await sql`create index survey_responses_report_time_idx on survey_responses (responded_at) include (survey_id, category, touchpoint)`.execute(db);
  await sql`create index survey_invitations_report_survey_idx on survey_invitations (survey_id, sent_at) include (touchpoint) where status <> 'FAILED'`.execute(
    db,
  );
  await sql`create index survey_invitations_report_time_idx on survey_invitations (sent_at) include (survey_id, touchpoint) where status <> 'FAILED'`.execute(
    db,
  );
  await sql`create statistics survey_responses_report_days (ndistinct) on ((responded_at at time zone 'UTC')::date), survey_id, touchpoint from survey_responses`.execute(
    db,
  );
}
