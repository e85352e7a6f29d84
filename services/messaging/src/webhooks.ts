import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { queryParam, type RouteHandler } from '@textloop/service-kit';
import type { MessagingContext } from './context';
import { conversationStep } from './conversations';
import { callbackMessageId, parseDeliveryReport, type DeliveryReports } from './delivery-reports';
import { ContactsUnavailableError, readInbound, receiveInbound, type InboundStep } from './inbound';

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function secretMatches(expected: Buffer, given: string | undefined | null): boolean {
  if (!given) return false;
  const g = Buffer.from(given);
  return g.length === expected.length && timingSafeEqual(g, expected);
}

/** Form fields from the body; a provider that puts them in the query string works too. */
function formOf(url: URL, body: Buffer): URLSearchParams {
  const params = new URLSearchParams(body.toString('utf8'));
  // Our own callback URLs carry no mocean- fields; parse the query only when it might.
  if (url.search.includes('mocean-')) for (const [k, v] of url.searchParams) if (k.startsWith('mocean-') && !params.has(k)) params.set(k, v);
  return params;
}

/**
 * The inbound steps after the keyword step (which receiveInbound always runs first and which marks
 * inbound.keyword), in order, in the transaction that stores the message: reply routing into
 * conversations (which leaves keywords and replies to surveys alone).
 */
export function inboundStepsFor(ctx: MessagingContext): InboundStep[] {
  return [conversationStep(ctx)];
}

/**
 * Provider callbacks. The secret travels in the URL we hand out (?secret=…) or in the
 * x-webhook-secret header; without it a request gets 401 and changes nothing. Inbound messages:
 * 200 stored (or a redelivery of one stored), 400 malformed, 413 text over 1,600 characters,
 * 503 not stored (database, or contacts for an unknown number) — the provider retries.
 */
export function webhookRoutes(
  ctx: MessagingContext,
  reports: DeliveryReports,
  inboundSteps: InboundStep[] = inboundStepsFor(ctx),
): Record<string, RouteHandler> {
  const expected = Buffer.from(ctx.config.webhookSecret);
  const authorized = (req: IncomingMessage, url: URL) => {
    const header = req.headers['x-webhook-secret'];
    return secretMatches(expected, queryParam(url.search, 'secret')) || secretMatches(expected, Array.isArray(header) ? header[0] : header);
  };

  return {
    'POST /webhooks/mocean/dlr': async (req, res, body, url) => {
      if (!authorized(req, url)) return reply(res, 401, 'missing or wrong webhook secret');
      const form = formOf(url, body);
      const query = { get: (name: string) => queryParam(url.search, name) };
      const report = parseDeliveryReport(form, callbackMessageId(query, form.get('mocean-to')), ctx.clock.now());
      if (typeof report === 'string') return reply(res, 400, report);
      let outcome;
      try {
        outcome = await reports.submit(report);
      } catch (err) {
        // Not acknowledged, so the provider retries; nothing was half-written.
        ctx.logger.error({ err: (err as Error).message }, 'could not record a delivery report');
        return reply(res, 503, 'could not record the report; try again');
      }
      if (outcome === 'unknown' && ctx.logger.isLevelEnabled('debug')) {
        ctx.logger.debug({ mid: report.messageId, msgid: report.providerMessageId }, 'delivery report for an unknown message');
      }
      reply(res, 200, 'OK');
    },

    'POST /webhooks/mocean/inbound': async (req, res, body, url) => {
      if (!authorized(req, url)) return reply(res, 401, 'missing or wrong webhook secret');
      const sms = readInbound(formOf(url, body));
      // 400: malformed (a field missing, a sender that is not a phone number, empty text); 413: text over 1,600 characters.
      if ('error' in sms) return reply(res, sms.status, sms.error);
      try {
        await receiveInbound(ctx, sms, inboundSteps);
      } catch (err) {
        // Not acknowledged and nothing stored, so the provider retries.
        if (err instanceof ContactsUnavailableError) {
          ctx.logger.warn({ err: err.message }, 'inbound message from an unknown number while contacts cannot be asked; refused for a retry');
          return reply(res, 503, 'cannot look up the sender right now; try again');
        }
        ctx.logger.error({ err: (err as Error).message }, 'could not record an inbound message');
        return reply(res, 503, 'could not record the message; try again');
      }
      reply(res, 200, 'OK');
    },
  };
}
