import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import { forbidden, type RequestContext, type Role } from '@textloop/service-kit';
import { batchLoader } from '../batch-loader';
import type { MessagingContext } from '../context';
import { conversationResolvers } from './conversations';
import { historyFor, listMessages, messageById, messagesByIds, messagingStats, queueStats, type HistoryRow } from '../messages';
import type { Page } from '../pagination';
import { previewMessage, sendMessages, type PreviewInput, type SendInput } from '../sending';
import type { MessageRow } from '../status';
import { createTemplate, listTemplates, templateByName, templatesByIds, updateTemplate, type TemplateInput, type TemplateRow } from '../templates';
import { visibleBody } from '../verification';
import { policyResolvers } from './policy';
import { DateTime, JSONScalar } from './scalars';
import { verificationResolvers } from './verification';

function allow(context: RequestContext, roles: Role[], what: string): void {
  if (!roles.includes(context.role)) throw forbidden(`The ${context.role} role may not ${what}; use a key with role ${roles.join(' or ')}.`);
}

const money = (amount: string | null, currency: string | null) => (amount !== null && currency ? { amount, currency } : null);

export function toTemplate(row: TemplateRow) {
  return { id: row.id, name: row.name, body: row.body, category: row.category, variables: row.variables, createdAt: row.created_at, updatedAt: row.updated_at };
}

/** Row → GraphQL Message; contact, template and statusHistory resolve from the kept ids. */
export function toMessage(row: MessageRow) {
  return {
    id: row.id,
    direction: row.direction,
    category: row.category,
    status: row.status,
    contactId: row.contact_id,
    templateId: row.template_id,
    to: row.to_number,
    from: row.from_number,
    body: visibleBody(row.body, row.correlation),
    encoding: row.encoding,
    segments: row.segments,
    price: money(row.price_amount, row.price_currency),
    provider: row.provider,
    providerMessageId: row.provider_message_id,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    correlation: row.correlation,
    conversationId: row.conversation_id ?? null,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    deliveredAt: row.delivered_at,
  };
}

type GqlMessage = ReturnType<typeof toMessage>;

function toConnection(page: Page<MessageRow>) {
  return { nodes: page.nodes.map(toMessage), pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor }, totalCount: page.totalCount };
}

/** kickRelease wakes the scheduled-release loop (a policy change made waiting messages due). */
export function createResolvers(ctx: MessagingContext, options: { kickRelease?: () => void } = {}): GraphQLResolverMap<RequestContext> {
  const templateById = batchLoader((ids: string[]) => templatesByIds(ctx, ids));
  const historyOf = batchLoader((ids: string[]) => historyFor(ctx, ids));
  const messageOf = batchLoader((ids: string[]) => messagesByIds(ctx, ids));
  const verification = verificationResolvers(ctx, allow);
  const policy = policyResolvers(ctx, allow, options.kickRelease);
  const conversations = conversationResolvers(ctx, allow, toMessage);

  return {
    DateTime,
    JSON: JSONScalar,
    Query: {
      message: async (_: unknown, args: { id: string }) => {
        const row = await messageById(ctx, args.id);
        return row ? toMessage(row) : null;
      },
      messages: async (_: unknown, args: { filter?: Parameters<typeof listMessages>[1] | null; first: number; after?: string | null }) =>
        toConnection(await listMessages(ctx, args.filter ?? {}, args.first, args.after)),
      previewMessage: (_: unknown, args: { input: PreviewInput }) => previewMessage(ctx, args.input),
      templates: async () => (await listTemplates(ctx)).map(toTemplate),
      template: async (_: unknown, args: { name: string }) => {
        const row = await templateByName(ctx, args.name);
        return row ? toTemplate(row) : null;
      },
      messagingStats: (_: unknown, args: Parameters<typeof messagingStats>[1]) => messagingStats(ctx, args),
      messagingQueue: () => queueStats(ctx),
      ...verification.Query,
      ...policy.Query,
      ...conversations.Query,
    },
    Mutation: {
      sendMessage: async (_: unknown, args: { input: SendInput }, context: RequestContext) => {
        allow(context, ['admin', 'app'], 'send messages');
        const [row] = await sendMessages(ctx, [{ input: args.input }], { indexed: false });
        return toMessage(row!);
      },
      sendMessages: async (_: unknown, args: { inputs: SendInput[] }, context: RequestContext) => {
        allow(context, ['admin', 'app'], 'send messages');
        return (
          await sendMessages(
            ctx,
            args.inputs.map((input) => ({ input })),
            { indexed: true },
          )
        ).map(toMessage);
      },
      createTemplate: async (_: unknown, args: { input: TemplateInput }, context: RequestContext) => {
        allow(context, ['admin'], 'manage templates');
        return toTemplate(await createTemplate(ctx, args.input));
      },
      updateTemplate: async (_: unknown, args: { name: string; input: TemplateInput }, context: RequestContext) => {
        allow(context, ['admin'], 'manage templates');
        return toTemplate(await updateTemplate(ctx, args.name, args.input));
      },
      ...verification.Mutation,
      ...policy.Mutation,
      ...conversations.Mutation,
    },
    Verification: verification.Verification,
    Conversation: conversations.Conversation,
    Message: {
      __resolveReference: async (ref: { id: string }) => {
        const row = await messageOf(ref.id);
        return row ? toMessage(row) : null;
      },
      contact: (m: GqlMessage) => (m.contactId ? { __typename: 'Contact', id: m.contactId } : null),
      template: async (m: GqlMessage) => {
        if (!m.templateId) return null;
        const row = await templateById(m.templateId);
        return row ? toTemplate(row) : null;
      },
      statusHistory: async (m: GqlMessage) => ((await historyOf(m.id)) ?? []).map((h: HistoryRow) => ({ status: h.status, at: h.at, detail: h.detail })),
      ...conversations.Message,
    },
    Contact: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      messages: async (contact: { id: string }, args: { first: number; after?: string | null }) =>
        toConnection(await listMessages(ctx, { contactId: contact.id }, args.first, args.after)),
    },
  } as GraphQLResolverMap<RequestContext>;
}
