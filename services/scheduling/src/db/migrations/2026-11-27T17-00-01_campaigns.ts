import { sql, type Kysely } from 'kysely';

/**
 * Re-engagement: campaigns and their recipients, personal offer codes (campaigns and automation
 * steps), the global send pacer, and warnings on automations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('automations')
    .addColumn('warnings', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();

  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('DRAFT')
        .check(sql`status in ('DRAFT', 'SCHEDULED', 'RUNNING', 'COMPLETED', 'CANCELED')`),
    )
    .addColumn('template', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('audience', 'jsonb', (c) => c.notNull())
    .addColumn('offer', 'jsonb')
    .addColumn('warnings', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('send_at', 'timestamptz')
    // Audience resolution: where the paging stands, who is doing it until when, and when it ended.
    .addColumn('resolve_cursor', 'text')
    .addColumn('resolve_lease_until', 'timestamptz')
    .addColumn('resolve_error', 'text')
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('recipients', 'integer')
    .addColumn('launched_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('canceled_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index campaigns_scheduled_idx on campaigns (send_at) where status = 'SCHEDULED'`.execute(db);
  await sql`create index campaigns_created_idx on campaigns (created_at desc, id desc)`.execute(db);

  await db.schema
    .createTable('campaign_recipients')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
    // null once the contact was erased
    .addColumn('contact_id', 'text')
    .addColumn('status', 'text', (c) =>
      c
        .notNull()
        .defaultTo('PENDING')
        .check(sql`status in ('PENDING', 'SENT', 'CANCELED')`),
    )
    .addColumn('offer_code', 'text')
    .addColumn('message_id', 'text')
    .addColumn('message_status', 'text')
    .addColumn('message_rank', 'integer', (c) => c.notNull().defaultTo(-1))
    .addColumn('price_amount', 'numeric')
    .addColumn('price_currency', 'text')
    .addColumn('sent_at', 'timestamptz')
    .addColumn('attribution_until', 'timestamptz')
    .addColumn('replied_at', 'timestamptz')
    .addColumn('opted_out_at', 'timestamptz')
    .addColumn('reactivated_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('campaign_recipients_contact_uq', ['campaign_id', 'contact_id'])
    .execute();
  // The sender's claim: pending recipients in id (insertion) order.
  await sql`create index campaign_recipients_pending_idx on campaign_recipients (id) where status = 'PENDING'`.execute(db);
  // Whether a campaign has pending recipients left (completion).
  await sql`create index campaign_recipients_pending_campaign_idx on campaign_recipients (campaign_id) where status = 'PENDING'`.execute(db);
  // Attribution of a contact's tracked events and STOPs to the campaigns it was sent.
  await sql`create index campaign_recipients_sent_contact_idx on campaign_recipients (contact_id, sent_at) where status = 'SENT'`.execute(db);

  await db.schema
    .createTable('offer_codes')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', 'text')
    .addColumn('campaign_id', 'text', (c) => c.references('campaigns.id').onDelete('cascade'))
    .addColumn('campaign_recipient_id', 'text')
    .addColumn('automation_id', 'text')
    .addColumn('run_id', 'text')
    .addColumn('step_id', 'text')
    .addColumn('message_id', 'text')
    .addColumn('discount_percent', 'integer')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('redeemed_at', 'timestamptz')
    .addColumn('redeemed_event_id', 'text')
    .addColumn('reactivated_at', 'timestamptz')
    .execute();
  await sql`create unique index offer_codes_recipient_uq on offer_codes (campaign_recipient_id) where campaign_recipient_id is not null`.execute(db);
  await sql`create unique index offer_codes_step_uq on offer_codes (step_id) where step_id is not null`.execute(db);
  // Every tracked event looks here for the contact's codes it may reactivate.
  await sql`create index offer_codes_unreactivated_contact_idx on offer_codes (contact_id) where reactivated_at is null`.execute(db);
  await sql`create index offer_codes_campaign_redeemed_idx on offer_codes (campaign_id) where redeemed_at is not null`.execute(db);
  await sql`create index offer_codes_automation_idx on offer_codes (automation_id) where automation_id is not null`.execute(db);

  // One row: how far the global send budget (CAMPAIGN_RATE_PER_SECOND) has been used.
  await db.schema
    .createTable('campaign_pacer')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('paced_until', 'timestamptz')
    .execute();
  await db.insertInto('campaign_pacer').values({ id: 'global', paced_until: null }).execute();
}
