import type { ConsentRow, ContactRow, TrackedEventRow } from '../db/database';

/** snake_case rows → the GraphQL shapes, in one place. */

export function toContact(row: ContactRow) {
  return {
    id: row.id,
    externalId: row.external_id,
    phone: row.phone,
    country: row.country,
    timezone: row.timezone,
    locale: row.locale,
    firstName: row.first_name,
    lastName: row.last_name,
    email: row.email,
    attributes: row.attributes,
    tags: row.tags,
    subscribed: row.subscribed,
    unsubscribedAt: row.unsubscribed_at,
    phoneVerified: row.phone_verified,
    lastActiveAt: row.last_active_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type ContactShape = ReturnType<typeof toContact>;

export function toConsentChange(row: ConsentRow) {
  return { subscribed: row.subscribed, reason: row.reason, source: row.source, at: row.at };
}

export function toTrackedEvent(row: TrackedEventRow, contact: ContactRow, duplicate: boolean) {
  return { id: row.id, name: row.name, contact: toContact(contact), properties: row.properties, occurredAt: row.occurred_at, duplicate };
}
