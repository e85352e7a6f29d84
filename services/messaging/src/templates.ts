import type { Selectable } from 'kysely';
import { newId } from '@textloop/events';
import { badInput, conflict, isUniqueViolation, notFound } from '@textloop/service-kit';
import type { MessageCategory, TemplatesTable } from './db/database';
import type { MessagingContext } from './context';
import { TemplateSyntaxError } from './rendering';

export type TemplateRow = Selectable<TemplatesTable>;

export interface TemplateInput {
  name: string;
  body: string;
  category?: MessageCategory | null;
}

const MAX_TEMPLATE_CHARS = 10_000;

function checked(ctx: MessagingContext, input: TemplateInput): { name: string; body: string; category: MessageCategory; variables: string[] } {
  const name = input.name.trim();
  if (!name) throw badInput('Give the template a name, e.g. "order_shipped".', 'name');
  if (name.length > 100) throw badInput('Template names are at most 100 characters.', 'name');
  if (!input.body.trim()) throw badInput('The template body is empty; write the message text, e.g. Hi {{ contact.firstName | default: "there" }}.', 'body');
  if (input.body.length > MAX_TEMPLATE_CHARS)
    throw badInput(`The template body is ${input.body.length} characters; the limit is ${MAX_TEMPLATE_CHARS}.`, 'body');
  let variables: string[];
  try {
    variables = ctx.renderer.variables(input.body);
  } catch (err) {
    if (err instanceof TemplateSyntaxError) throw badInput(`The template body is not valid Liquid: ${err.message}`, 'body', err);
    throw err;
  }
  return { name, body: input.body, category: input.category ?? 'TRANSACTIONAL', variables };
}

export async function createTemplate(ctx: MessagingContext, input: TemplateInput): Promise<TemplateRow> {
  const t = checked(ctx, input);
  const now = ctx.clock.now();
  try {
    return await ctx.db
      .insertInto('templates')
      .values({ id: newId(), name: t.name, body: t.body, category: t.category, variables: JSON.stringify(t.variables), created_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`A template named "${t.name}" already exists; pick another name or use updateTemplate.`, 'name');
    throw err;
  }
}

export async function updateTemplate(ctx: MessagingContext, name: string, input: TemplateInput): Promise<TemplateRow> {
  const t = checked(ctx, input);
  try {
    const row = await ctx.db
      .updateTable('templates')
      .set({ name: t.name, body: t.body, category: t.category, variables: JSON.stringify(t.variables), updated_at: ctx.clock.now() })
      .where('name', '=', name)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw notFound(`No template is named "${name}"; templates lists the existing ones.`);
    return row;
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`A template named "${t.name}" already exists; pick another name.`, 'name');
    throw err;
  }
}

export function listTemplates(ctx: MessagingContext): Promise<TemplateRow[]> {
  return ctx.db.selectFrom('templates').selectAll().orderBy('name').execute();
}

export async function templateByName(ctx: MessagingContext, name: string): Promise<TemplateRow | undefined> {
  return ctx.db.selectFrom('templates').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function templatesByNames(ctx: MessagingContext, names: string[]): Promise<Map<string, TemplateRow>> {
  const out = new Map<string, TemplateRow>();
  if (names.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('templates')
    .selectAll()
    .where('name', 'in', [...new Set(names)])
    .execute();
  for (const r of rows) out.set(r.name, r);
  return out;
}

export async function templatesByIds(ctx: MessagingContext, ids: string[]): Promise<Map<string, TemplateRow>> {
  const out = new Map<string, TemplateRow>();
  if (ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('templates')
    .selectAll()
    .where('id', 'in', [...new Set(ids)])
    .execute();
  for (const r of rows) out.set(r.id, r);
  return out;
}
