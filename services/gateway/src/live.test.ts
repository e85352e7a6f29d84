import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fragmentsOf } from './auth';
import { REPO_ROOT } from './compose';
import { graphql as g } from './graphql-cjs';
import { buildEntityQuery, buildLiveSchema, LIVE_FIELDS, responseKeysOf, SUBSCRIPTIONS_SDL } from './live';
import type { LiveEvent } from './live-feed';

const API = `
  scalar DateTime
  enum MessageStatus { QUEUED SENT DELIVERED RECEIVED }
  enum ConversationStatus { OPEN PENDING RESOLVED }
  type Contact { id: ID! phone: String! }
  type Message { id: ID! status: MessageStatus! body: String! contact: Contact conversation: Conversation }
  type Conversation { id: ID! status: ConversationStatus! assignee: String contact: Contact! messages: [Message!]! }
`;
const WITH_CONVERSATIONS = g.buildSchema(`${API} type Query { message(id: ID!): Message conversation(id: ID!): Conversation }`);
const WITHOUT_CONVERSATIONS = g.buildSchema(`
  scalar DateTime
  enum MessageStatus { QUEUED SENT DELIVERED RECEIVED }
  type Contact { id: ID! phone: String! }
  type Message { id: ID! status: MessageStatus! body: String! contact: Contact }
  type Query { message(id: ID!): Message }
`);

describe('the live schema', () => {
  it('is the contract of subscriptions.graphql', () => {
    const contractPath = join(REPO_ROOT, '..', 'shared', 'contract', 'subscriptions.graphql');
    const fields = (sdl: string) => {
      const type = g.buildSchema(`${API} type Query { x: Int } ${sdl}`).getSubscriptionType()!;
      return Object.values(type.getFields()).map((f) => `${f.name}(${f.args.map((a) => `${a.name}: ${a.type}`).join(', ')}): ${f.type}`);
    };
    expect(fields(SUBSCRIPTIONS_SDL)).toEqual(fields(readFileSync(contractPath, 'utf8')));
  });

  it('adds every subscription to an API that has their types', () => {
    const live = buildLiveSchema(WITH_CONVERSATIONS);
    expect(Object.keys(live.schema.getSubscriptionType()!.getFields())).toEqual(['messageReceived', 'conversationUpdated', 'messageStatusChanged']);
    expect(live.unavailable.size).toBe(0);
    expect(live.schema.getQueryType()!.getFields().message).toBeDefined();
  });

  it('leaves out conversationUpdated, with the reason, when the supergraph has no conversations', () => {
    const live = buildLiveSchema(WITHOUT_CONVERSATIONS);
    expect(Object.keys(live.schema.getSubscriptionType()!.getFields())).toEqual(['messageReceived', 'messageStatusChanged']);
    expect(live.unavailable.get('conversationUpdated')).toMatch(
      /^conversationUpdated is not available on this gateway yet: the composed API has no Query.conversation\(id:\), type Conversation, type ConversationStatus/,
    );
  });
});

describe('the query each event runs', () => {
  const parseOne = (text: string) => {
    const document = g.parse(text);
    const operation = document.definitions.find((d) => d.kind === 'OperationDefinition')!;
    if (operation.kind !== 'OperationDefinition') throw new Error('no operation');
    const field = operation.selectionSet.selections[0]!;
    if (field.kind !== 'Field') throw new Error('no field');
    return { document, operation, field };
  };

  it("asks the entity for exactly the subscriber's selection, under the subscription's response key", () => {
    const { document, operation, field } = parseOne(`
      subscription Inbox($withContact: Boolean!, $unused: Int) {
        inbound: messageReceived @include(if: $withContact) { id st: status ...Who }
      }
      fragment Who on Message { contact { ...Phone } }
      fragment Phone on Contact { phone }
      fragment Unused on Message { body }
    `);
    const entity = buildEntityQuery(document, operation, field, 'message');
    expect(entity).toMatchObject({ idVariable: 'textloopId', responseKey: 'inbound', variables: ['withContact'] });
    expect(g.print(g.parse(entity.query))).toBe(
      g.print(
        g.parse(`
          query Inbox($textloopId: ID!, $withContact: Boolean!) {
            inbound: message(id: $textloopId) @include(if: $withContact) { id st: status ...Who }
          }
          fragment Who on Message { contact { ...Phone } }
          fragment Phone on Contact { phone }
        `),
      ),
    );
    expect(g.validate(WITH_CONVERSATIONS, g.parse(entity.query))).toEqual([]);
  });

  it('does not take a variable name the subscriber uses', () => {
    const { document, operation, field } = parseOne('subscription($textloopId: ID) { messageStatusChanged(contactId: $textloopId) { id } }');
    const entity = buildEntityQuery(document, operation, field, 'message');
    expect(entity.idVariable).toBe('textloopId2');
    expect(entity.variables).toEqual([]);
    expect(entity.query).toContain('message(id: $textloopId2)');
  });

  it('finds the response keys that show the status the event announces', () => {
    const { document, field } = parseOne(`
      subscription { conversationUpdated { s1: status ... on Conversation { status } ...F ... on Message { s3: status } } }
      fragment F on Conversation { s2: status assignee }
    `);
    expect(responseKeysOf(field.selectionSet, fragmentsOf(document), 'Conversation', 'status').sort()).toEqual(['s1', 's2', 'status']);
    expect(responseKeysOf(field.selectionSet, fragmentsOf(document), 'Conversation', 'assignee')).toEqual(['assignee']);
  });
});

describe('which events a subscription takes', () => {
  const event = (subject: string, data: Record<string, unknown>): LiveEvent => ({ id: 'e', subject, data });

  it('messageStatusChanged: status events of the contact asked for, never inbound', () => {
    const accept = LIVE_FIELDS.messageStatusChanged!.accept;
    const sent = event('messaging.message.sent', { messageId: 'm1', contactId: 'c1', status: 'SENT' });
    expect(accept(sent, {})).toEqual({ id: 'm1', overrides: { status: 'SENT' } });
    expect(accept(sent, { contactId: 'c1' })).toEqual({ id: 'm1', overrides: { status: 'SENT' } });
    expect(accept(sent, { contactId: 'c2' })).toBeUndefined();
    expect(accept(event('messaging.message.received', { messageId: 'm2', contactId: 'c1' }), {})).toBeUndefined();
  });

  it('conversationUpdated: the status asked for, with the status and assignee the change left', () => {
    const accept = LIVE_FIELDS.conversationUpdated!.accept;
    const assigned = event('messaging.conversation.updated', { conversationId: 'k1', contactId: 'c1', status: 'OPEN', assignee: 'sam', change: 'assigned' });
    expect(accept(assigned, {})).toEqual({ id: 'k1', overrides: { status: 'OPEN', assignee: 'sam' } });
    expect(accept(assigned, { status: 'OPEN' })).toBeDefined();
    expect(accept(assigned, { status: 'RESOLVED' })).toBeUndefined();
  });
});
