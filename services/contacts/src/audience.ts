import { sql, type Kysely, type SqlBool } from 'kysely';
import type { ContactSummary, RpcResponse, rpcMethods } from '@textloop/events';
import type { z } from 'zod';
import { checkInactiveForDays, inactiveSince, type ContactsDeps } from './contacts';
import type { ContactRow, Database } from './db/database';

/** A request to rpc.contacts.audience, defaults applied (packages/events/src/rpc.ts). */
export type AudienceRequest = z.infer<(typeof rpcMethods)['rpc.contacts.audience']['request']>;
export type AudiencePage = RpcResponse<'rpc.contacts.audience'>;

const SUMMARY_COLUMNS = ['id', 'phone', 'country', 'timezone', 'first_name', 'last_name', 'subscribed'] as const;
type SummaryRow = Pick<ContactRow, (typeof SUMMARY_COLUMNS)[number]>;

export function contactSummary(r: SummaryRow): ContactSummary {
  return {
    contactId: r.id,
    phone: r.phone,
    country: r.country,
    timezone: r.timezone,
    firstName: r.first_name,
    lastName: r.last_name,
    subscribed: r.subscribed,
  };
}

/**
 * One page of the audience as a single keyset query in id order (limit + 1 rows, to know whether
 * there is more). The planner picks the access path by selectivity: the primary key in id order
 * (keyset, contactIds), filtering as it goes, when many contacts match; the GIN index on tags
 * (`&&`: any of) or contacts_inactivity_idx, then a top-N sort, when few do. Country has no index
 * of its own: a common country is found along the primary key, and a rare one costs a scan per
 * page but has few pages; every index on contacts is paid for by each activity update.
 */
export function audienceQuery(db: Kysely<Database>, request: AudienceRequest, now: Date) {
  let query = db.selectFrom('contacts').select(SUMMARY_COLUMNS);
  if (request.tags) query = query.where(sql<SqlBool>`tags && ${request.tags}::text[]`);
  if (request.inactiveForDays != null) query = query.where(inactiveSince(request.inactiveForDays, now));
  if (request.country) query = query.where('country', '=', request.country.toUpperCase());
  if (request.contactIds) query = query.where(sql<SqlBool>`id = any(${request.contactIds}::text[])`);
  if (request.subscribedOnly) query = query.where('subscribed', '=', true);
  if (request.after) query = query.where('id', '>', request.after);
  return query.orderBy('id').limit(request.limit + 1);
}

/**
 * rpc.contacts.audience: who matches, a page at a time. Criteria combine with AND; `tags` is
 * any-of (a campaign "to vip and beta" reaches both groups); an empty `tags` or `contactIds` list
 * matches nobody, so a forgotten selection never widens to everyone. `next` is the last id
 * returned, or null on the last page. The page is cut short (with `next` set) when it would not
 * fit in `maxBytes` of JSON, so it always travels as one NATS message.
 */
export async function resolveAudience(deps: Pick<ContactsDeps, 'db' | 'clock'>, request: AudienceRequest, maxBytes = Infinity): Promise<AudiencePage> {
  if (request.inactiveForDays != null) checkInactiveForDays(request.inactiveForDays);
  if (request.tags?.length === 0 || request.contactIds?.length === 0) return { contacts: [], next: null };
  const rows = await audienceQuery(deps.db, request, deps.clock.now()).execute();
  const contacts: ContactSummary[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, request.limit)) {
    const summary = contactSummary(row);
    bytes += Buffer.byteLength(JSON.stringify(summary)) + 1;
    if (bytes > maxBytes && contacts.length > 0) return { contacts, next: contacts[contacts.length - 1]!.contactId };
    contacts.push(summary);
  }
  return { contacts, next: rows.length > request.limit ? contacts[contacts.length - 1]!.contactId : null };
}
