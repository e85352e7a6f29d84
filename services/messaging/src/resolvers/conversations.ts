import type { RequestContext, Role } from '@textloop/service-kit';
import { batchLoader } from '../batch-loader';
import type { MessagingContext } from '../context';
import { feedbackOf, type ConversationFeedbackRow } from '../conversation-feedback';
import {
  assignConversation,
  conversationById,
  conversationsByIds,
  listConversations,
  replyToConversation,
  resolveConversation,
  threadsOf,
  type ConversationFilter,
  type ConversationRow,
} from '../conversations';
import type { MessageRow } from '../status';

type Allow = (context: RequestContext, roles: Role[], what: string) => void;

/** Who may work conversations (reply, assign, resolve); every role may read them. */
const AGENTS: Role[] = ['admin', 'agent'];

function toConversation(row: ConversationRow) {
  return { id: row.id, contactId: row.contact_id, status: row.status, assignee: row.assignee, lastMessageAt: row.last_message_at, createdAt: row.created_at };
}

type GqlConversation = ReturnType<typeof toConversation>;

function toFeedback(row: ConversationFeedbackRow) {
  return { responseId: row.response_id, surveyId: row.survey_id, score: row.score, comment: row.comment, at: row.at, commentedAt: row.commented_at };
}

/**
 * Query.conversation(s), the conversation mutations, Conversation and Message.conversation; merged
 * into createResolvers. toMessage maps message rows the same way as everywhere else.
 */
export function conversationResolvers<M extends { conversationId: string | null }>(ctx: MessagingContext, allow: Allow, toMessage: (row: MessageRow) => M) {
  const conversationOf = batchLoader((ids: string[]) => conversationsByIds(ctx, ids));
  const threadOf = batchLoader((ids: string[]) => threadsOf(ctx, ids));
  const feedbackOfConversation = batchLoader((ids: string[]) => feedbackOf(ctx, ids));

  return {
    Query: {
      conversation: async (_: unknown, args: { id: string }) => {
        const row = await conversationById(ctx, args.id);
        return row ? toConversation(row) : null;
      },
      conversations: async (_: unknown, args: ConversationFilter & { first: number; after?: string | null }) => {
        const page = await listConversations(ctx, { status: args.status, assignee: args.assignee }, args.first, args.after);
        return {
          nodes: page.nodes.map(toConversation),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
          totalCount: page.totalCount,
        };
      },
    },
    Mutation: {
      replyToConversation: async (_: unknown, args: { conversationId: string; body: string }, context: RequestContext) => {
        allow(context, AGENTS, 'answer conversations');
        const { message } = await replyToConversation(ctx, args.conversationId, args.body);
        return toMessage(message);
      },
      assignConversation: async (_: unknown, args: { conversationId: string; assignee?: string | null }, context: RequestContext) => {
        allow(context, AGENTS, 'assign conversations');
        return toConversation(await assignConversation(ctx, args.conversationId, args.assignee));
      },
      resolveConversation: async (_: unknown, args: { conversationId: string }, context: RequestContext) => {
        allow(context, AGENTS, 'resolve conversations');
        return toConversation(await resolveConversation(ctx, args.conversationId));
      },
    },
    Conversation: {
      __resolveReference: async (ref: { id: string }) => {
        const row = await conversationOf(ref.id);
        return row ? toConversation(row) : null;
      },
      contact: (c: GqlConversation) => ({ __typename: 'Contact', id: c.contactId }),
      messages: async (c: GqlConversation) => ((await threadOf(c.id)) ?? []).map(toMessage),
      feedback: async (c: GqlConversation) => ((await feedbackOfConversation(c.id)) ?? []).map(toFeedback),
    },
    Message: {
      conversation: async (m: M) => {
        if (!m.conversationId) return null;
        const row = await conversationOf(m.conversationId);
        return row ? toConversation(row) : null;
      },
    },
  };
}
