import { z } from 'zod';

export const OUTCOMES = ['DELIVERED', 'UNDELIVERED', 'EXPIRED', 'REJECTED', 'THROTTLED', 'HTTP_500', 'TIMEOUT'] as const;

export type Outcome = (typeof OUTCOMES)[number];

export interface Rule {
  /** Phone prefix in E.164 form (`+1555`); `+` alone or `*` matches every number. */
  match: string;
  outcome: Outcome;
  probability: number;
  dlrDelayMs?: number;
  duplicateDlr: boolean;
  /** Extension: `mocean-error-code` in the delivery report for UNDELIVERED / EXPIRED. */
  errorCode?: number;
  /** Extension: replies from matching handsets reach the platform twice. */
  duplicateInbound: boolean;
}

const ruleSchema = z.object({
  match: z
    .string()
    .trim()
    .regex(/^(\*|\+?\d{0,15})$/, 'match must be a phone prefix such as "+1555" (or "*" for every number)'),
  // Case-insensitive because people type these by hand in curl.
  outcome: z.preprocess((v) => (typeof v === 'string' ? v.trim().toUpperCase() : v), z.enum(OUTCOMES)),
  probability: z.number().min(0).max(1).optional(),
  dlrDelayMs: z.number().int().min(0).max(3_600_000).optional(),
  duplicateDlr: z.boolean().optional(),
  errorCode: z.number().int().min(0).max(99_999).optional(),
  duplicateInbound: z.boolean().optional(),
});

const rulesSchema = z.array(ruleSchema).max(1000);

export type ParseRulesResult = { ok: true; rules: Rule[] } | { ok: false; error: string };

export function parseRules(body: unknown): ParseRulesResult {
  // `{ "rules": [...] }` is accepted too, since that is what GET-then-edit scripts tend to send.
  const list = body !== null && typeof body === 'object' && !Array.isArray(body) && 'rules' in body ? (body as { rules: unknown }).rules : body;
  if (!Array.isArray(list)) {
    return { ok: false, error: 'body must be a JSON array of rules, e.g. [{"match":"+1555","outcome":"UNDELIVERED"}]' };
  }
  const parsed = rulesSchema.safeParse(list);
  if (!parsed.success) return { ok: false, error: z.prettifyError(parsed.error) };
  const rules = parsed.data.map((r): Rule => {
    const digits = r.match === '*' ? '' : r.match.replace(/^\+/, '');
    const rule: Rule = {
      match: `+${digits}`,
      outcome: r.outcome,
      probability: r.probability ?? 1,
      duplicateDlr: r.duplicateDlr ?? false,
      duplicateInbound: r.duplicateInbound ?? false,
    };
    if (r.dlrDelayMs !== undefined) rule.dlrDelayMs = r.dlrDelayMs;
    if (r.errorCode !== undefined) rule.errorCode = r.errorCode;
    return rule;
  });
  return { ok: true, rules };
}

/**
 * First rule whose prefix matches and whose probability draw hits. A missed draw falls through
 * so that "10 % of +1555 fail, the rest behave like everyone else" is expressible.
 */
export function pickRule(rules: readonly Rule[], digits: string, random: () => number): Rule | undefined {
  for (const rule of rules) {
    // rule.match always starts with '+'; comparing from index 1 avoids building '+digits'.
    if (!digits.startsWith(rule.match.slice(1))) continue;
    if (rule.probability >= 1) return rule;
    if (rule.probability > 0 && random() < rule.probability) return rule;
  }
  return undefined;
}
