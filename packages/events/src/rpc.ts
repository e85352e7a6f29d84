import { ErrorCode as NatsErrorCode, type NatsConnection, type Subscription } from 'nats';
import { z } from 'zod';
import type { MinimalLogger } from './jetstream';

/**
 * Request/reply between services over core NATS, for questions that need an answer now (does this
 * template exist? who is this contact?) rather than a projection. Subjects start with `rpc.`, which
 * no stream captures: a JetStream stream on the same subject would answer with its publish ack.
 * Every method's request and response is a zod schema here, like the event subjects.
 */

const contactSummary = z.object({
  contactId: z.string(),
  phone: z.string(),
  country: z.string().nullish(),
  timezone: z.string().nullish(),
  firstName: z.string().nullish(),
  lastName: z.string().nullish(),
  subscribed: z.boolean(),
});
export type ContactSummary = z.infer<typeof contactSummary>;

export const rpcMethods = {
  /** contacts: the contacts with these ids (missing ids are left out). */
  'rpc.contacts.get': {
    request: z.object({ ids: z.array(z.string()).max(1000) }),
    response: z.object({ contacts: z.array(contactSummary) }),
  },
  /**
   * contacts: the contact with this phone (E.164), created when there is none (through the normal
   * create path: contacts.contact.created, consent ledger entry with this source). `created` says which.
   */
  'rpc.contacts.ensure': {
    request: z.object({ phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be E.164, e.g. +14155550100'), source: z.string().min(1).max(100) }),
    response: z.object({ contact: contactSummary, created: z.boolean() }),
  },
  /**
   * contacts: one page of an audience (campaigns), in contact id order. Criteria combine with AND;
   * leave one out not to filter by it. `tags`: the contact has ANY of them (an empty list matches
   * nobody). `inactiveForDays`: lastActiveAt, or createdAt when never active, at least this many
   * days ago. `country`: ISO 3166-1 alpha-2 of the phone. `contactIds`: only these (unknown ids are
   * left out; an empty list matches nobody). `subscribedOnly` (default true) leaves out unsubscribed
   * contacts. Page with `after` = the previous page's `next` (the last contact id it returned)
   * until `next` is null. A page holds at most `limit` contacts, fewer when they would not fit in
   * one NATS message; criteria are evaluated per page, so contacts that change while paging may
   * join or leave later pages.
   */
  'rpc.contacts.audience': {
    request: z.object({
      tags: z.array(z.string().trim().min(1).max(100)).max(100).optional(),
      inactiveForDays: z.number().int('inactiveForDays must be a whole number of days').min(1, 'inactiveForDays must be 1 or more').optional(),
      country: z
        .string()
        .regex(/^[A-Za-z]{2}$/, 'country must be an ISO 3166-1 alpha-2 code, e.g. US')
        .optional(),
      contactIds: z.array(z.string().min(1)).max(10_000).optional(),
      subscribedOnly: z.boolean().default(true),
      after: z.string().min(1).nullish(),
      limit: z.number().int().min(1).max(5_000).default(1_000),
    }),
    response: z.object({ contacts: z.array(contactSummary), next: z.string().nullish() }),
  },
  /** messaging: which of these template names exist, with the variables each body reads. */
  'rpc.messaging.templates': {
    request: z.object({ names: z.array(z.string()).max(1000) }),
    response: z.object({
      templates: z.array(z.object({ name: z.string(), category: z.string(), variables: z.array(z.string()) })),
    }),
  },
  /** feedback: which of these survey ids exist. */
  'rpc.feedback.surveys': {
    request: z.object({ ids: z.array(z.string()).max(1000) }),
    response: z.object({ surveys: z.array(z.object({ surveyId: z.string(), name: z.string() })) }),
  },
} as const;

export type RpcMethod = keyof typeof rpcMethods;
export type RpcRequest<M extends RpcMethod> = z.input<(typeof rpcMethods)[M]['request']>;
export type RpcResponse<M extends RpcMethod> = z.infer<(typeof rpcMethods)[M]['response']>;

/** The answering service could not be reached or failed; `unavailable` means nobody answered. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly unavailable: boolean,
  ) {
    super(message);
  }
}

type Envelope = { ok: true; data: unknown } | { ok: false; error: string };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Answers one method. Instances of a service share the load through a queue group. A request that
 * does not validate gets an error reply (never a crash); a handler failure is logged and reported.
 */
export function serveRpc<M extends RpcMethod>(
  nc: NatsConnection,
  method: M,
  queue: string,
  handler: (request: z.infer<(typeof rpcMethods)[M]['request']>) => Promise<RpcResponse<M>>,
  logger: MinimalLogger,
): Subscription {
  const schema = rpcMethods[method];
  return nc.subscribe(method, {
    queue,
    callback: (err, msg) => {
      if (err) {
        logger.warn({ method, err: err.message }, 'rpc subscription error');
        return;
      }
      const reply = (envelope: Envelope) => {
        if (msg.reply) msg.respond(encoder.encode(JSON.stringify(envelope)));
      };
      let request: unknown;
      try {
        request = JSON.parse(decoder.decode(msg.data));
      } catch {
        reply({ ok: false, error: 'request is not JSON' });
        return;
      }
      const parsed = schema.request.safeParse(request);
      if (!parsed.success) {
        reply({ ok: false, error: `invalid request: ${parsed.error.message}` });
        return;
      }
      handler(parsed.data as never).then(
        (data) => reply({ ok: true, data }),
        (e: unknown) => {
          logger.error({ method, err: (e as Error).message }, 'rpc handler failed');
          reply({ ok: false, error: (e as Error).message });
        },
      );
    },
  });
}

/** Asks the service that owns `method`; throws RpcError when nobody answers in time or it failed. */
export async function callRpc<M extends RpcMethod>(nc: NatsConnection, method: M, request: RpcRequest<M>, timeoutMs = 5000): Promise<RpcResponse<M>> {
  const owner = method.split('.')[1];
  let raw: Uint8Array;
  try {
    raw = (await nc.request(method, encoder.encode(JSON.stringify(request)), { timeout: timeoutMs })).data;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === NatsErrorCode.NoResponders
        ? 'is not running'
        : code === NatsErrorCode.Timeout
          ? `did not answer within ${timeoutMs} ms`
          : (err as Error).message;
    throw new RpcError(`the ${owner} service ${why}; try again when it is up`, true);
  }
  const envelope = JSON.parse(decoder.decode(raw)) as Envelope;
  if (!envelope.ok) throw new RpcError(`the ${owner} service could not answer: ${envelope.error}`, false);
  return rpcMethods[method].response.parse(envelope.data) as RpcResponse<M>;
}
