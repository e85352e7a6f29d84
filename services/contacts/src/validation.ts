import { normalizePhone, PhoneError, type NormalizedPhone } from '@textloop/sms';
import { badInput } from '@textloop/service-kit';

/** Rules for the values a contact is made of; every failure is a BAD_USER_INPUT naming the field. */

export type JsonObject = Record<string, unknown>;

export const FALLBACK_TIMEZONE = 'UTC';
const MAX_ATTRIBUTES_BYTES = 64 * 1024;
const MAX_TAG_LENGTH = 100;
const MAX_TAGS = 100;
const MAX_TEXT = 200;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a phone number to E.164 with the country and zone it implies. `defaultCountryAllowed`
 * says whether the caller's input has a defaultCountry field, so the message only suggests what exists.
 */
export function parsePhone(phone: string, defaultCountry?: string | null, options: { field?: string; defaultCountryAllowed?: boolean } = {}): NormalizedPhone {
  const field = options.field ?? 'phone';
  try {
    return normalizePhone(phone, defaultCountry ?? undefined);
  } catch (err) {
    if (!(err instanceof PhoneError)) throw err;
    if (err.code === 'NEEDS_COUNTRY') {
      if (defaultCountry) throw badInput(err.message, 'defaultCountry', err);
      if (options.defaultCountryAllowed === false) {
        throw badInput(`Phone number "${phone}" has no country code: write it in international form as +<country code><number>, e.g. +14155550100`, field, err);
      }
    }
    throw badInput(err.message, field, err);
  }
}

const canonicalZones = new Map(Intl.supportedValuesOf('timeZone').map((zone) => [zone.toLowerCase(), zone]));

/** The zone in its usual spelling, or undefined when the runtime does not know it as an IANA zone. */
export function canonicalTimezone(input: string): string | undefined {
  const zone = input.trim();
  if (!zone) return undefined;
  const known = canonicalZones.get(zone.toLowerCase());
  if (known) return known;
  // Offsets such as +02:00 are not zones: they ignore daylight saving time.
  if (!/^[A-Za-z]/.test(zone)) return undefined;
  try {
    // Links and aliases (UTC, US/Eastern, Etc/GMT+5) are valid IANA names the index above leaves out.
    const resolved = new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === zone.toLowerCase() ? resolved : zone;
  } catch {
    return undefined;
  }
}

export function parseTimezone(input: string): string {
  const zone = canonicalTimezone(input);
  if (!zone) {
    throw badInput(
      `"${input}" is not an IANA time zone; use a name such as "America/New_York", "Europe/London" or "UTC", or leave timezone out to derive it from the phone number`,
      'timezone',
    );
  }
  return zone;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@.]+$/;

export function parseEmail(input: string): string | null {
  const email = input.trim();
  if (!email) return null;
  if (email.length > 254 || !EMAIL.test(email)) {
    throw badInput(`"${input}" is not an email address; use the form name@example.com or leave email out`, 'email');
  }
  return email;
}

export function parseLocale(input: string): string | null {
  const locale = input.trim();
  if (!locale) return null;
  try {
    const [canonical] = Intl.getCanonicalLocales(locale);
    if (canonical) return canonical;
  } catch {
    // falls through to the error below
  }
  throw badInput(`"${input}" is not a BCP 47 language tag; use a tag such as "en", "en-US" or "pt-BR"`, 'locale');
}

export function parseText(input: string, field: string): string | null {
  const text = input.trim();
  if (!text) return null;
  if (text.length > MAX_TEXT) throw badInput(`${field} is longer than ${MAX_TEXT} characters; shorten it`, field);
  return text;
}

export function parseExternalId(input: string): string {
  const id = input.trim();
  if (!id) throw badInput('externalId is empty; pass your own id for this person or leave externalId out', 'externalId');
  if (id.length > MAX_TEXT) throw badInput(`externalId is longer than ${MAX_TEXT} characters; shorten it`, 'externalId');
  return id;
}

/** Attributes must be a JSON object; used for create (null values dropped) and as a patch (null kept: it removes the key). */
export function parseAttributes(input: unknown, options: { keepNulls: boolean }): JsonObject {
  if (input === null || input === undefined) return {};
  if (!isJsonObject(input)) {
    const got = Array.isArray(input) ? 'an array' : `a ${typeof input}`;
    throw badInput(`attributes must be a JSON object such as {"plan": "pro"}, not ${got}`, 'attributes');
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(input)) {
    if (!key.trim()) throw badInput('attributes has an empty key; give every attribute a name', 'attributes');
    if (value === null && !options.keepNulls) continue;
    out[key] = value;
  }
  if (JSON.stringify(out).length > MAX_ATTRIBUTES_BYTES) {
    throw badInput(`attributes are larger than ${MAX_ATTRIBUTES_BYTES / 1024} KB as JSON; keep only what templates and filters need`, 'attributes');
  }
  return out;
}

/** Merges a patch into attributes: a null value removes the key. */
export function mergeAttributes(current: JsonObject, patch: JsonObject): JsonObject {
  const merged: JsonObject = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  if (JSON.stringify(merged).length > MAX_ATTRIBUTES_BYTES) {
    throw badInput(`attributes would be larger than ${MAX_ATTRIBUTES_BYTES / 1024} KB as JSON; remove keys you no longer need`, 'attributes');
  }
  return merged;
}

/** Trimmed, de-duplicated, in the order given. */
export function parseTags(input: readonly string[] | null | undefined): string[] {
  if (!input) return [];
  const tags: string[] = [];
  for (const raw of input) {
    const tag = raw.trim();
    if (!tag) throw badInput('tags contains an empty tag; remove it', 'tags');
    if (tag.length > MAX_TAG_LENGTH) throw badInput(`tag "${tag.slice(0, 20)}…" is longer than ${MAX_TAG_LENGTH} characters`, 'tags');
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length > MAX_TAGS) throw badInput(`a contact has at most ${MAX_TAGS} tags; you gave ${tags.length}`, 'tags');
  return tags;
}

export interface CreateContactInput {
  phone: string;
  defaultCountry?: string | null;
  externalId?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  email?: string | null;
  locale?: string | null;
  timezone?: string | null;
  attributes?: unknown;
  tags?: string[] | null;
}

export interface UpdateContactInput {
  firstName?: string | null;
  lastName?: string | null;
  email?: string | null;
  locale?: string | null;
  timezone?: string | null;
  attributes?: unknown;
  tags?: string[] | null;
}

/** A create input checked and normalised. `timezone` is the one given (derived later when absent). */
export interface ContactData {
  phone: string;
  country: string | null;
  derivedTimezone: string;
  externalId: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  locale: string | null;
  timezone: string | null;
  attributes: JsonObject;
  /** Which optional fields the input set (import merges only these into an existing contact). */
  given: { tags: boolean; attributes: boolean };
  tags: string[];
}

export function parseCreateInput(input: CreateContactInput): ContactData {
  if (typeof input.phone !== 'string') throw badInput('phone is required, e.g. "+14155550100"', 'phone');
  const phone = parsePhone(input.phone, input.defaultCountry);
  return {
    phone: phone.e164,
    country: phone.country ?? null,
    derivedTimezone: phone.timezone ?? FALLBACK_TIMEZONE,
    externalId: input.externalId == null ? null : parseExternalId(input.externalId),
    firstName: input.firstName == null ? null : parseText(input.firstName, 'firstName'),
    lastName: input.lastName == null ? null : parseText(input.lastName, 'lastName'),
    email: input.email == null ? null : parseEmail(input.email),
    locale: input.locale == null ? null : parseLocale(input.locale),
    timezone: input.timezone == null ? null : parseTimezone(input.timezone),
    attributes: parseAttributes(input.attributes, { keepNulls: false }),
    tags: parseTags(input.tags),
    given: { tags: input.tags != null, attributes: input.attributes != null },
  };
}

/** An update input checked: absent fields are left out, explicit nulls clear (timezone: back to the derived zone). */
export interface ContactPatch {
  firstName?: string | null;
  lastName?: string | null;
  email?: string | null;
  locale?: string | null;
  /** null: derive from the phone number again */
  timezone?: string | null;
  attributes?: JsonObject;
  tags?: string[];
}

export function parseUpdateInput(input: UpdateContactInput): ContactPatch {
  const patch: ContactPatch = {};
  if ('firstName' in input) patch.firstName = input.firstName == null ? null : parseText(input.firstName, 'firstName');
  if ('lastName' in input) patch.lastName = input.lastName == null ? null : parseText(input.lastName, 'lastName');
  if ('email' in input) patch.email = input.email == null ? null : parseEmail(input.email);
  if ('locale' in input) patch.locale = input.locale == null ? null : parseLocale(input.locale);
  if ('timezone' in input) patch.timezone = input.timezone == null ? null : parseTimezone(input.timezone);
  if ('attributes' in input && input.attributes != null) patch.attributes = parseAttributes(input.attributes, { keepNulls: true });
  if ('tags' in input) patch.tags = parseTags(input.tags);
  return patch;
}
