import { GraphQLError } from 'graphql';
import { newId } from '@textloop/events';
import { badInput, notFound } from '@textloop/service-kit';
import { analyzeText, encodingWarnings, normalizePhone, PhoneError, priceFor, type Price } from '@textloop/sms';
import type { MessageCategory } from './db/database';
import type { MessagingContext } from './context';
import { awaitContacts, contactsByPhones, type ContactRow } from './contacts-projection';
import { insertWithPolicy } from './policy';
import { contactContext, TemplateRenderError, TemplateSyntaxError } from './rendering';
import { freshMessageState, insertMessages, type MessageRow } from './status';
import { templatesByNames, type TemplateRow } from './templates';

/** The contract's SendMessageInput, as resolvers and the cmd.send handler pass it. */
export interface SendInput {
  contactId?: string | null;
  to?: string | null;
  defaultCountry?: string | null;
  body?: string | null;
  template?: string | null;
  variables?: unknown;
  category?: MessageCategory | null;
  from?: string | null;
  idempotencyKey?: string | null;
}

export interface SendRequest {
  input: SendInput;
  /** Opaque object echoed on every status event of the message (messaging.cmd.send). */
  correlation?: Record<string, unknown> | null;
  /** The Textloop service whose command asked for it: it also gets the statuses on messaging.notify.<service>.* */
  requester?: string | null;
}

export const MAX_BODY_CHARS = 1600;
export const MAX_BATCH = 1000;
const MAX_KEY_CHARS = 255;

/** Characters as the provider counts them (code points), so our limit and Mocean's agree. */
export function characterCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** A GraphQL error about one input of a batch: extensions.index says which. */
function atIndex(err: unknown, index: number | undefined): unknown {
  if (index === undefined || !(err instanceof GraphQLError)) return err;
  return new GraphQLError(`inputs[${index}]: ${err.message}`, { extensions: { ...err.extensions, index }, originalError: err.originalError ?? undefined });
}

function asVariables(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badInput('variables must be a JSON object, e.g. {"orderId": "A-1001"}.', 'variables');
  return value as Record<string, unknown>;
}

function checkSender(from: string): string {
  const s = from.trim();
  if (/^\+?[0-9]{3,15}$/.test(s) || /^[A-Za-z0-9][A-Za-z0-9 ]{0,10}$/.test(s)) return s;
  throw badInput(
    `"${from}" cannot be a sender: use a phone number (up to 15 digits) or an alphanumeric sender ID of at most 11 letters, digits or spaces.`,
    'from',
  );
}

export function senderFor(ctx: MessagingContext, country: string | undefined): string {
  return (country && ctx.config.sendersByCountry[country]) || ctx.config.defaultSender;
}

export function normalized(to: string, defaultCountry: string | null | undefined, field: string): { e164: string; country?: string } {
  try {
    return normalizePhone(to, defaultCountry ?? undefined);
  } catch (err) {
    if (err instanceof PhoneError) {
      const hint = err.code === 'NEEDS_COUNTRY' ? ' Give the number with its country code (+…) or set defaultCountry.' : '';
      throw badInput(`${err.message.replace(/\.?$/, '.')}${hint}`, field, err);
    }
    throw err;
  }
}

function countryOf(contact: ContactRow): string | undefined {
  if (contact.country) return contact.country;
  try {
    return normalizePhone(contact.phone).country;
  } catch {
    return undefined;
  }
}

/** Static checks of one input (no database): which recipient, which text. */
function checkShape(input: SendInput): void {
  const hasContact = Boolean(input.contactId);
  const hasTo = Boolean(input.to?.trim());
  if (hasContact === hasTo) {
    throw badInput(hasContact ? 'Give contactId or to, not both.' : 'Say who receives the message: give contactId or to (a phone number).', 'to');
  }
  const hasBody = input.body !== undefined && input.body !== null;
  const hasTemplate = Boolean(input.template);
  if (hasBody === hasTemplate) {
    throw badInput(hasBody ? 'Give body or template, not both.' : 'Say what to send: give body (the text) or template (a template name).', 'body');
  }
  if (hasBody) {
    if (input.body!.trim() === '') throw badInput('body is empty; write the message text.', 'body');
    const n = characterCount(input.body!);
    if (n > MAX_BODY_CHARS)
      throw badInput(
        `body is ${n} characters; an SMS may be at most ${MAX_BODY_CHARS} characters (about 10 segments). Shorten it or split it into several messages.`,
        'body',
      );
  }
  if (input.idempotencyKey !== undefined && input.idempotencyKey !== null) {
    if (input.idempotencyKey === '' || input.idempotencyKey.length > MAX_KEY_CHARS)
      throw badInput(`idempotencyKey must be 1 to ${MAX_KEY_CHARS} characters.`, 'idempotencyKey');
  }
  asVariables(input.variables);
  if (input.from) checkSender(input.from);
}

interface Recipient {
  e164: string;
  country?: string;
  contact?: ContactRow;
}

/** What is rendered: a stored template, or the body of the request (Liquid as well). */
type Source = { kind: 'template'; template: TemplateRow } | { kind: 'body'; body: string };

/** A body without Liquid markup is sent as it is; only text with {{ or {% goes through the engine. */
export const hasLiquid = (text: string) => text.includes('{{') || text.includes('{%');

/**
 * Renders a template or a Liquid body for a recipient. A missing variable is BAD_USER_INPUT on
 * variables; broken Liquid is BAD_USER_INPUT on body (or template).
 */
function renderSource(ctx: MessagingContext, source: Source, recipient: Recipient | undefined, variables: Record<string, unknown>, limits: boolean): string {
  const text = source.kind === 'template' ? source.template.body : source.body;
  if (source.kind === 'body' && !hasLiquid(text)) return text;
  const what = source.kind === 'template' ? `Template "${source.template.name}"` : 'body';
  const field = source.kind === 'template' ? 'template' : 'body';
  const contact = contactContext(recipient?.contact?.profile_version ? recipient.contact : undefined, { phone: recipient?.e164, country: recipient?.country });
  let body: string;
  try {
    body = ctx.renderer.render(text, { contact, variables });
  } catch (err) {
    if (err instanceof TemplateRenderError) throw badInput(`${what}: ${err.message}`, 'variables', err);
    if (err instanceof TemplateSyntaxError) throw badInput(`${what} is not valid Liquid: ${err.message}`, field, err);
    throw err;
  }
  if (!limits) return body;
  if (body.trim() === '') throw badInput(`${what} rendered to empty text with these variables; nothing would be sent.`, field);
  const n = characterCount(body);
  if (n > MAX_BODY_CHARS) throw badInput(`${what} rendered to ${n} characters; an SMS may be at most ${MAX_BODY_CHARS}.`, field);
  return body;
}

interface Loaded {
  templates: Map<string, TemplateRow>;
  contacts: Map<string, ContactRow>;
  byPhone: Map<string, ContactRow>;
  phones: Array<{ e164: string; country?: string } | undefined>;
}

/** Everything the inputs refer to, in a few queries for the whole batch. */
async function load(ctx: MessagingContext, inputs: SendInput[], indexOf: (position: number) => number | undefined): Promise<Loaded> {
  const phones = inputs.map((input, i) => {
    if (!input.to) return undefined;
    try {
      return normalized(input.to, input.defaultCountry, 'to');
    } catch (err) {
      throw atIndex(err, indexOf(i));
    }
  });
  const templateNames = inputs.flatMap((i) => (i.template ? [i.template] : []));
  const contactIds = inputs.flatMap((i) => (i.contactId ? [i.contactId] : []));
  const [templates, contacts, byPhone] = await Promise.all([
    templatesByNames(ctx, templateNames),
    awaitContacts(ctx, contactIds),
    contactsByPhones(
      ctx,
      phones.flatMap((p) => (p ? [p.e164] : [])),
    ),
  ]);
  inputs.forEach((input, i) => {
    if (input.template && !templates.has(input.template)) {
      throw atIndex(notFound(`No template is named "${input.template}"; create it with createTemplate or check the spelling.`), indexOf(i));
    }
    if (input.contactId && !contacts.has(input.contactId)) {
      throw atIndex(notFound(`No contact has id "${input.contactId}" (or it was deleted).`), indexOf(i));
    }
  });
  return { templates, contacts, byPhone, phones };
}

function buildRow(ctx: MessagingContext, request: SendRequest, index: number, loaded: Loaded, now: Date): MessageRow {
  const { input } = request;
  let recipient: Recipient;
  if (input.contactId) {
    const contact = loaded.contacts.get(input.contactId)!;
    recipient = { e164: contact.phone, country: countryOf(contact), contact };
  } else {
    const phone = loaded.phones[index]!;
    recipient = { e164: phone.e164, country: phone.country, contact: loaded.byPhone.get(phone.e164) };
  }
  const template = input.template ? loaded.templates.get(input.template) : undefined;
  const source: Source = template ? { kind: 'template', template } : { kind: 'body', body: input.body! };
  const body = renderSource(ctx, source, recipient, asVariables(input.variables), true);
  // A template's category wins over the default TRANSACTIONAL (a marketing text stays marketing).
  const category: MessageCategory =
    template && (input.category ?? 'TRANSACTIONAL') === 'TRANSACTIONAL' ? template.category : (input.category ?? 'TRANSACTIONAL');
  const info = analyzeText(body);
  const optedOut = recipient.contact !== undefined && !recipient.contact.subscribed;
  const price: Price | undefined = optedOut ? undefined : priceFor(recipient.country, info.segments);
  return {
    id: newId(),
    direction: 'OUTBOUND',
    category,
    status: optedOut ? 'SUPPRESSED' : 'QUEUED',
    contact_id: recipient.contact?.id ?? null,
    to_number: recipient.e164,
    from_number: input.from ? checkSender(input.from) : senderFor(ctx, recipient.country),
    body,
    template_id: template?.id ?? null,
    encoding: info.encoding,
    segments: info.segments,
    country: recipient.country ?? null,
    price_amount: price?.amount ?? null,
    price_currency: price?.currency ?? null,
    provider: null,
    provider_message_id: null,
    error_code: optedOut ? 'OPTED_OUT' : null,
    error_message: optedOut ? 'The recipient unsubscribed (STOP or unsubscribeContact); nothing is sent until they resubscribe.' : null,
    idempotency_key: input.idempotencyKey ?? null,
    correlation: request.correlation ?? null,
    requester: request.requester ?? null,
    ...freshMessageState(now),
  };
}

export function toInsertable(row: MessageRow) {
  return { ...row, correlation: row.correlation === null ? null : JSON.stringify(row.correlation) };
}

async function existingByKeys(ctx: MessagingContext, keys: string[]): Promise<Map<string, MessageRow>> {
  const out = new Map<string, MessageRow>();
  if (keys.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('messages')
    .selectAll()
    .where('idempotency_key', 'in', [...new Set(keys)])
    .execute();
  for (const r of rows) out.set(r.idempotency_key!, r);
  return out;
}

/**
 * Validates every request (all or nothing), renders, gates on consent, and inserts the whole batch
 * (messages, their history and their events) in one statement. A repeat idempotency key returns the
 * first message and sends nothing.
 */
export async function sendMessages(ctx: MessagingContext, requests: SendRequest[], options: { indexed: boolean } = { indexed: true }): Promise<MessageRow[]> {
  if (requests.length === 0) return [];
  if (requests.length > MAX_BATCH) throw badInput(`At most ${MAX_BATCH} messages per call; split the ${requests.length} into several calls.`, 'inputs');
  const idx = (i: number) => (options.indexed ? i : undefined);
  requests.forEach((r, i) => {
    try {
      checkShape(r.input);
    } catch (err) {
      throw atIndex(err, idx(i));
    }
  });

  const keys = requests.flatMap((r) => (r.input.idempotencyKey ? [r.input.idempotencyKey] : []));
  const known = await existingByKeys(ctx, keys);
  const fresh = requests.map((r, i) => ({ r, i })).filter(({ r }) => !(r.input.idempotencyKey && known.has(r.input.idempotencyKey)));

  const loaded = await load(
    ctx,
    fresh.map((f) => f.r.input),
    (j) => idx(fresh[j]!.i),
  );
  const now = ctx.clock.now();
  const built = fresh.map((f, j) => {
    try {
      return buildRow(ctx, f.r, j, loaded, now);
    } catch (err) {
      throw atIndex(err, idx(f.i));
    }
  });

  const result = await persist(ctx, built);
  return requests.map((r) => {
    const key = r.input.idempotencyKey;
    if (key && known.has(key)) return known.get(key)!;
    return result.shift()!;
  });
}

/** Inserts new message rows (QUEUED/SCHEDULED/SUPPRESSED/FAILED) with their history and events; returns the rows in input order. */
export async function persist(ctx: MessagingContext, rows: MessageRow[]): Promise<MessageRow[]> {
  if (rows.length === 0) return [];
  // The messaging policy may hold rows back (quiet hours → SCHEDULED) or suppress them (weekly cap) first.
  const insertedIds = await insertWithPolicy(ctx, rows, (db, details) => {
    const history = rows.map((r) => ({ messageId: r.id, status: r.status, at: r.created_at, detail: details.get(r.id) ?? r.error_message }));
    return insertMessages(db, rows, history, ctx.clock);
  });
  // Lost a race for an idempotency key (or a repeat inside this batch): return the winner.
  const lost = rows.filter((r) => !insertedIds.has(r.id));
  const winners = new Map<string, MessageRow>();
  if (lost.length > 0) {
    const found = await ctx.db
      .selectFrom('messages')
      .selectAll()
      .where(
        'idempotency_key',
        'in',
        lost.map((r) => r.idempotency_key!),
      )
      .execute();
    for (const f of found) winners.set(f.idempotency_key!, f);
  }
  if (rows.some((r) => r.status === 'QUEUED' && insertedIds.has(r.id))) ctx.kickDispatcher();
  if (insertedIds.size > 0) ctx.outbox.kick();
  return rows.map((r) => (insertedIds.has(r.id) ? r : winners.get(r.idempotency_key!)!));
}

export interface PreviewInput {
  body?: string | null;
  template?: string | null;
  variables?: unknown;
  contactId?: string | null;
  to?: string | null;
}

export interface Preview {
  body: string;
  encoding: 'GSM7' | 'UCS2';
  segments: number;
  characters: number;
  price: Price | null;
  warnings: string[];
}

/** Renders like sendMessage would and reports encoding, segments, price and what to improve. */
export async function previewMessage(ctx: MessagingContext, input: PreviewInput): Promise<Preview> {
  const hasBody = input.body !== undefined && input.body !== null;
  if (hasBody === Boolean(input.template)) {
    throw badInput(hasBody ? 'Give body or template, not both.' : 'Give body (the text) or template (a template name) to preview.', 'body');
  }
  if (input.contactId && input.to) throw badInput('Give contactId or to, not both.', 'to');
  const variables = asVariables(input.variables);
  let recipient: Recipient | undefined;
  if (input.contactId) {
    const contact = (await awaitContacts(ctx, [input.contactId])).get(input.contactId);
    if (!contact) throw notFound(`No contact has id "${input.contactId}" (or it was deleted).`);
    recipient = { e164: contact.phone, country: countryOf(contact), contact };
  } else if (input.to) {
    const phone = normalized(input.to, undefined, 'to');
    recipient = { ...phone, contact: (await contactsByPhones(ctx, [phone.e164])).get(phone.e164) };
  }
  let source: Source;
  if (input.template) {
    const template = (await templatesByNames(ctx, [input.template])).get(input.template);
    if (!template) throw notFound(`No template is named "${input.template}"; create it with createTemplate or check the spelling.`);
    source = { kind: 'template', template };
  } else {
    source = { kind: 'body', body: input.body! };
  }
  const body = renderSource(ctx, source, recipient, variables, false);
  const info = analyzeText(body);
  const warnings = encodingWarnings(body);
  const n = characterCount(body);
  if (n > MAX_BODY_CHARS) warnings.push(`Message is ${n} characters; sendMessage accepts at most ${MAX_BODY_CHARS}, so shorten it by ${n - MAX_BODY_CHARS}.`);
  if (body.trim() === '') warnings.push('Message is empty; nothing would be sent.');
  if (recipient?.contact && !recipient.contact.subscribed)
    warnings.push('The recipient unsubscribed; sendMessage would record this message as SUPPRESSED (OPTED_OUT) and send nothing.');
  return {
    body,
    encoding: info.encoding,
    segments: info.segments,
    characters: info.characters,
    price: recipient ? (priceFor(recipient.country, info.segments) ?? null) : null,
    warnings,
  };
}
