import { sql, type Kysely } from 'kysely';

/** Phone verifications (OTP): the code is kept only as a salted scrypt hash. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('verifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('to_number', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('code_length', 'integer', (c) => c.notNull())
    .addColumn('code_salt', 'text', (c) => c.notNull())
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sends', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('request_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute();
  // The hourly limit per number and "the latest pending verification of this number".
  await sql`create index verifications_to_created_idx on verifications (to_number, created_at)`.execute(db);
  // messaging.cmd.verify requestId: the same request never starts two verifications.
  await sql`create unique index verifications_request_id_idx on verifications (request_id) where request_id is not null`.execute(db);
  // A number has at most one PENDING verification: a start within its validity resends its code.
  await sql`create unique index verifications_pending_to_idx on verifications (to_number) where status = 'PENDING'`.execute(db);
  // Pending verifications whose time ran out, expired (and their messages scrubbed) in passing.
  await sql`create index verifications_pending_expiry_idx on verifications (expires_at) where status = 'PENDING'`.execute(db);
}
