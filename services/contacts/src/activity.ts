import { sql, type Transaction } from 'kysely';
import { EVENT_NAME_PATTERN, newId } from '@textloop/events';
import { badInput, isUniqueViolation, notFound, type Clock } from '@textloop/service-kit';
import { normalizePhone } from '@textloop/sms';
import { DAY_MS, insertContact, phoneOnlyContact, requireContact, spellStart, type ContactsDeps } from './contacts';
import type { ContactRow, Database, TrackedEventRow } from './db/database';
import { applicationEvent, publishInTransaction } from './events/publish';
import { FALLBACK_TIMEZONE, isJsonObject, parsePhone, type JsonObject } from './validation';

export const IDEMPOTENCY_WINDOW_MS = DAY_MS;
const MAX_NAME_LENGTH = 120;
const MAX_KEY_LENGTH = 255;
const MAX_PROPERTIES_BYTES = 64 * 1024;

/**
 * Activity (a tracked event, an inbound message, a verification): moves last_active_at forward to
 * `at`, never back, so an event whose occurredAt is older than the known activity changes nothing.
 * Activity after the start of the current inactivity spell ends that spell: dormant_days goes back
 * to 0 and the thresholds are announced again, counted from the new activity. The one case where
 * the spell start moves back: a contact never active before gets activity from before it was
 * created (history from the application); that only tells when its spell began, so the
 * thresholds already announced stay announced.
 */
export async function recordActivity(trx: Transaction<Database>, contactId: string, at: Date): Promise<ContactRow | undefined> {
  return trx
    .updateTable('contacts')
    .set({
      // Both right-hand sides read the row as it was before this update.
      dormant_days: sql<number>`case when ${at}::timestamptz > ${spellStart} then 0 else dormant_days end`,
      last_active_at: sql<Date>`greatest(last_active_at, ${at}::timestamptz)`,
    })
    .where('id', '=', contactId)
    .returningAll()
    .executeTakeFirst();
}

/** Activity is never in the future: an event stamped ahead of our clock counts as now. */
export function activityTime(at: Date, clock: Clock): Date {
  const now = clock.now();
  return at.getTime() > now.getTime() ? now : at;
}

/**
 * messaging.verification.approved: the contact proved it holds the number. Verified once (one
 * contacts.contact.verified); every approval counts as activity.
 */
export async function recordVerification(
  trx: Transaction<Database>,
  clock: Clock,
  contactId: string,
  to: string,
  at: Date,
): Promise<'verified' | 'already' | 'ignored'> {
  const contact = await trx.selectFrom('contacts').selectAll().where('id', '=', contactId).forUpdate().executeTakeFirst();
  if (!contact) return 'ignored';
  let verifiedNumber: string | undefined;
  try {
    verifiedNumber = normalizePhone(to).e164;
  } catch {
    verifiedNumber = undefined;
  }
  // A verification of some other number says nothing about this contact's phone.
  if (verifiedNumber !== contact.phone) return 'ignored';
  await recordActivity(trx, contactId, activityTime(at, clock));
  if (contact.phone_verified) return 'already';
  await trx.updateTable('contacts').set({ phone_verified: true, updated_at: clock.now() }).where('id', '=', contactId).execute();
  await publishInTransaction(trx, clock, [{ subject: 'contacts.contact.verified', data: { contactId, phone: contact.phone } }]);
  return 'verified';
}

export interface TrackEventInput {
  contactId?: string | null;
  externalId?: string | null;
  phone?: string | null;
  name: string;
  properties?: unknown;
  occurredAt?: Date | null;
  idempotencyKey?: string | null;
}

export interface TrackedEventResult {
  event: TrackedEventRow;
  contact: ContactRow;
  duplicate: boolean;
}

interface CheckedTrackEvent {
  by: { contactId: string } | { externalId: string } | { phone: string; country: string | null; timezone: string };
  name: string;
  properties: JsonObject;
  occurredAt?: Date;
  idempotencyKey: string | null;
}

function checkTrackEvent(input: TrackEventInput): CheckedTrackEvent {
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (!EVENT_NAME_PATTERN.test(name) || name.length > MAX_NAME_LENGTH) {
    throw badInput(
      `"${input.name}" is not a valid event name: use dot-separated lower-case tokens of letters, digits and _ (each starting with a letter), e.g. "order.shipped" or "appointment.booked"`,
      'name',
    );
  }
  const properties = input.properties ?? {};
  if (!isJsonObject(properties)) {
    throw badInput(
      `properties must be a JSON object such as {"orderId": "A-17"}, not ${Array.isArray(properties) ? 'an array' : `a ${typeof properties}`}`,
      'properties',
    );
  }
  if (JSON.stringify(properties).length > MAX_PROPERTIES_BYTES) {
    throw badInput(`properties are larger than ${MAX_PROPERTIES_BYTES / 1024} KB as JSON; send only what automations and templates need`, 'properties');
  }
  const given = (['contactId', 'externalId', 'phone'] as const).filter((k) => input[k] != null && input[k] !== '');
  if (given.length !== 1) {
    throw badInput(
      given.length === 0
        ? 'Say whose event this is: pass exactly one of contactId, externalId or phone'
        : `Pass exactly one of contactId, externalId or phone to identify the contact, not ${given.join(' and ')}`,
      given[1] ?? 'contactId',
    );
  }
  let by: CheckedTrackEvent['by'];
  if (input.contactId != null && input.contactId !== '') by = { contactId: input.contactId };
  else if (input.externalId != null && input.externalId !== '') by = { externalId: input.externalId.trim() };
  else {
    const phone = parsePhone(input.phone!, undefined, { defaultCountryAllowed: false });
    by = { phone: phone.e164, country: phone.country ?? null, timezone: phone.timezone ?? FALLBACK_TIMEZONE };
  }
  let idempotencyKey: string | null = null;
  if (input.idempotencyKey != null) {
    idempotencyKey = input.idempotencyKey.trim();
    if (!idempotencyKey || idempotencyKey.length > MAX_KEY_LENGTH) {
      throw badInput(`idempotencyKey must be 1 to ${MAX_KEY_LENGTH} characters, e.g. the id of the order this event is about`, 'idempotencyKey');
    }
  }
  return { by, name, properties, occurredAt: input.occurredAt ?? undefined, idempotencyKey };
}

async function resolveContact(trx: Transaction<Database>, deps: ContactsDeps, by: CheckedTrackEvent['by'], source: string): Promise<ContactRow> {
  if ('contactId' in by) return requireContact(trx, by.contactId, { forUpdate: true });
  if ('externalId' in by) {
    const row = await trx.selectFrom('contacts').selectAll().where('external_id', '=', by.externalId).forUpdate().executeTakeFirst();
    if (!row) throw notFound(`No contact has externalId "${by.externalId}"; create it with createContact or identify the contact by phone`);
    return row;
  }
  const row = await trx.selectFrom('contacts').selectAll().where('phone', '=', by.phone).forUpdate().executeTakeFirst();
  if (row) return row;
  return insertContact(trx, deps, phoneOnlyContact({ e164: by.phone, country: by.country ?? undefined, timezone: by.timezone }), source);
}

/**
 * Records an application event for a contact and publishes events.<name>. A repeated
 * idempotencyKey within 24 h returns the first event with duplicate: true and publishes nothing.
 */
export async function trackEvent(deps: ContactsDeps, input: TrackEventInput, source: string): Promise<TrackedEventResult> {
  const checked = checkTrackEvent(input);
  const attempt = () =>
    deps.db.transaction().execute(async (trx): Promise<TrackedEventResult & { published: boolean }> => {
      const now = deps.clock.now();
      if (checked.idempotencyKey) {
        const first = await trx.selectFrom('tracked_events').selectAll().where('idempotency_key', '=', checked.idempotencyKey).forUpdate().executeTakeFirst();
        if (first && now.getTime() - first.created_at.getTime() < IDEMPOTENCY_WINDOW_MS) {
          const contact = await requireContact(trx, first.contact_id);
          return { event: first, contact, duplicate: true, published: false };
        }
        // The window has passed: the key is free for a new event.
        if (first) await trx.updateTable('tracked_events').set({ idempotency_key: null }).where('id', '=', first.id).execute();
      }
      const found = await resolveContact(trx, deps, checked.by, source);
      const occurredAt = checked.occurredAt ?? now;
      const event = await trx
        .insertInto('tracked_events')
        .values({
          id: newId(),
          contact_id: found.id,
          name: checked.name,
          properties: JSON.stringify(checked.properties),
          occurred_at: occurredAt,
          idempotency_key: checked.idempotencyKey,
          created_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const contact = (await recordActivity(trx, found.id, activityTime(occurredAt, deps.clock))) ?? found;
      await publishInTransaction(trx, deps.clock, [
        applicationEvent({
          eventId: event.id,
          contactId: contact.id,
          name: event.name,
          properties: event.properties,
          occurredAt: event.occurred_at.toISOString(),
        }),
      ]);
      return { event, contact, duplicate: false, published: true };
    });
  let result: TrackedEventResult & { published: boolean };
  try {
    result = await attempt();
  } catch (err) {
    // A concurrent request took the same idempotency key or created the same phone first; the retry sees its row.
    if (!isUniqueViolation(err)) throw err;
    result = await attempt();
  }
  if (result.published) deps.outbox.kick();
  return { event: result.event, contact: result.contact, duplicate: result.duplicate };
}
