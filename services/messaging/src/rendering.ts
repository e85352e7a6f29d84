import { Liquid, type Template as LiquidTemplate } from 'liquidjs';
import type { Selectable } from 'kysely';
import type { ContactsTable } from './db/database';

/**
 * Liquid for message templates. Strict: an unknown variable or filter is an error, never an empty
 * string (a message reading "Your order  has shipped" is worse than no message). lenientIf lets
 * `{% if x %}` and `| default:` test a variable that was not given.
 */
export function createLiquid(): Liquid {
  const engine = new Liquid({
    strictVariables: true,
    strictFilters: true,
    lenientIf: true,
    ownPropertyOnly: true,
    parseLimit: 100_000,
    renderLimit: 1_000,
    memoryLimit: 10_000_000,
  });
  // Templates are data, not files: nothing may read the file system.
  for (const tag of ['include', 'render', 'layout', 'block']) delete engine.tags[tag];
  return engine;
}

export class TemplateSyntaxError extends Error {}
export class TemplateRenderError extends Error {
  constructor(
    message: string,
    /** the missing variable, e.g. "orderId", when that was the problem */
    readonly variable?: string,
  ) {
    super(message);
  }
}

/** Keys every template can read as contact.<key>; all present (null when unknown) so `default` works. */
export const CONTACT_KEYS = ['id', 'firstName', 'lastName', 'phone', 'email', 'locale', 'timezone', 'country', 'externalId', 'attributes', 'tags'] as const;

export type ContactContext = Record<(typeof CONTACT_KEYS)[number], unknown>;

export function contactContext(contact: Selectable<ContactsTable> | undefined, fallback: { phone?: string; country?: string } = {}): ContactContext {
  if (!contact) {
    return {
      id: null,
      firstName: null,
      lastName: null,
      phone: fallback.phone ?? null,
      email: null,
      locale: null,
      timezone: null,
      country: fallback.country ?? null,
      externalId: null,
      attributes: {},
      tags: [],
    };
  }
  return {
    id: contact.id,
    firstName: contact.first_name,
    lastName: contact.last_name,
    phone: contact.phone,
    email: contact.email,
    locale: contact.locale,
    timezone: contact.timezone,
    country: contact.country,
    externalId: contact.external_id,
    attributes: contact.attributes ?? {},
    tags: contact.tags ?? [],
  };
}

/** Parses and caches template bodies (a bulk send renders the same body a thousand times). */
export class TemplateRenderer {
  private readonly cache = new Map<string, LiquidTemplate[]>();

  constructor(
    private readonly engine: Liquid = createLiquid(),
    private readonly maxCached = 500,
  ) {}

  parse(body: string): LiquidTemplate[] {
    const hit = this.cache.get(body);
    if (hit) return hit;
    let parsed: LiquidTemplate[];
    try {
      parsed = this.engine.parse(body);
    } catch (err) {
      throw new TemplateSyntaxError((err as Error).message);
    }
    if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(body, parsed);
    return parsed;
  }

  /** Variables the body reads from outside, e.g. ["contact.firstName", "orderId"] (loop variables excluded). */
  variables(body: string): string[] {
    return this.engine.globalFullVariablesSync(this.parse(body));
  }

  render(body: string, scope: { contact: ContactContext; variables: Record<string, unknown> }): string {
    const parsed = this.parse(body);
    // Template variables sit beside contact; contact always wins so a variable cannot impersonate it.
    const context = { ...scope.variables, contact: scope.contact };
    try {
      return String(this.engine.renderSync(parsed, context));
    } catch (err) {
      const message = (err as Error).message;
      const missing = /undefined variable: ([^,]+)/.exec(message)?.[1]?.trim();
      if (missing) {
        const hint = missing.startsWith('contact.')
          ? `the contact has no "${missing.slice('contact.'.length)}"`
          : `pass it in variables, e.g. {"${missing.split(/[.[]/)[0]}": …}`;
        throw new TemplateRenderError(
          `The template needs the variable "${missing}", which is not set: ${hint}, or give it a fallback with | default: "…"`,
          missing,
        );
      }
      throw new TemplateRenderError(`The template could not be rendered: ${message}`);
    }
  }
}
