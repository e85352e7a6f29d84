import { Liquid } from 'liquidjs';

/**
 * Survey texts (question, follow-up, thanks) are Liquid that messaging renders with the contact's
 * fields when it sends them. Checking them here, with the same engine and settings, turns a typo
 * into an error at createSurvey instead of a FAILED message at send time.
 */

/** The contact fields messaging's templates can read (services/messaging/src/rendering.ts). */
export const CONTACT_FIELDS = ['id', 'firstName', 'lastName', 'phone', 'email', 'locale', 'timezone', 'country', 'externalId', 'attributes', 'tags'] as const;

const engine = new Liquid({ strictVariables: true, strictFilters: true, lenientIf: true, ownPropertyOnly: true, parseLimit: 100_000 });
// As in messaging: templates are data, not files.
for (const tag of ['include', 'render', 'layout', 'block']) delete engine.tags[tag];

/** Why the text is not a template messaging can render with contact fields, or null when it is. */
export function liquidProblem(text: string): string | null {
  let variables: string[];
  try {
    variables = engine.globalFullVariablesSync(engine.parse(text));
  } catch (err) {
    return `is not valid Liquid: ${(err as Error).message.split('\n')[0]}`;
  }
  for (const variable of variables) {
    const [root, field] = variable.split(/[.[\]"']+/).filter(Boolean);
    if (root !== 'contact') {
      return `reads "${variable}", which is not set when a survey is sent: use contact fields, e.g. {{ contact.firstName }}.`;
    }
    if (field !== undefined && !(CONTACT_FIELDS as readonly string[]).includes(field)) {
      return `reads contact.${field}, which contacts do not have; use one of ${CONTACT_FIELDS.map((f) => `contact.${f}`).join(', ')} (custom data is under contact.attributes).`;
    }
  }
  return null;
}
