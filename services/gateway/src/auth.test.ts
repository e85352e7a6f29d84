import { describe, expect, it } from 'vitest';
import { OperationTypeNode, parse, type OperationDefinitionNode } from 'graphql';
import { authenticate, authorize, DEV_API_KEY, fragmentsOf, loadApiKeys, parseApiKeys, ROLE_TABLE, rolesFor, rootFieldsOf } from './auth';

describe('API keys', () => {
  it('parses role:key pairs and tells callers apart by a non-secret name', () => {
    const keys = parseApiKeys(' admin:k1, app:k2,agent:k:3 ,viewer:k4,');
    expect(keys.find('k1')?.role).toBe('admin');
    expect(keys.find('k2')?.role).toBe('app');
    expect(keys.find('k:3')?.role).toBe('agent');
    expect(keys.find('k4')?.role).toBe('viewer');
    expect(keys.find('k5')).toBeUndefined();
    expect(keys.find('k1')?.keyName).toMatch(/^admin-[0-9a-f]{8}$/);
    expect(keys.find('k1')?.keyName).not.toContain('k1');
    expect(keys.devKey).toBeUndefined();
  });

  it('rejects malformed lists with a message that shows the format, without echoing keys', () => {
    expect(() => parseApiKeys('root:secret')).toThrow(/role:key.*admin, app, agent, viewer/);
    expect(() => parseApiKeys('root:secret')).not.toThrow(/secret/);
    expect(() => parseApiKeys('justakey')).toThrow(/API_KEYS entry "justakey"/);
    expect(() => parseApiKeys('admin:')).toThrow(/role:key/);
    expect(() => parseApiKeys('admin:same,app:same')).toThrow(/same key twice/);
    expect(() => parseApiKeys(' , ')).toThrow(/lists no keys/);
  });

  it('falls back to the development key outside production and refuses to run open in production', () => {
    const dev = loadApiKeys({});
    expect(dev.devKey).toBe(DEV_API_KEY);
    expect(dev.find(DEV_API_KEY)?.role).toBe('admin');
    expect(loadApiKeys({ API_KEYS: 'app:k2' }).find(DEV_API_KEY)).toBeUndefined();
    expect(() => loadApiKeys({ NODE_ENV: 'production' })).toThrow(/API_KEYS is not set/);
    expect(loadApiKeys({ NODE_ENV: 'production', API_KEYS: 'admin:k1' }).find('k1')?.role).toBe('admin');
  });
});

describe('authenticate and authorize', () => {
  const keys = parseApiKeys('admin:k1,viewer:k4');

  it('needs a known bearer key and says how to send one', () => {
    for (const header of [undefined, '', 'k1', 'Basic k1', 'Bearer nope']) {
      const result = authenticate(keys, header);
      expect(result.ok, String(header)).toBe(false);
      if (!result.ok) {
        expect(result.error.extensions?.code).toBe('UNAUTHENTICATED');
        expect(result.error.message).toContain('Authorization: Bearer <key>');
      }
    }
    expect(authenticate(keys, 'Bearer k1')).toMatchObject({ ok: true, caller: { role: 'admin' } });
    expect(authenticate(keys, 'bearer   k4 ')).toMatchObject({ ok: true, caller: { role: 'viewer' } });
  });

  it('lets viewers read only', () => {
    const viewer = keys.find('k4')!;
    const admin = keys.find('k1')!;
    expect(authorize(viewer, OperationTypeNode.QUERY, ['contacts'])).toBeUndefined();
    expect(authorize(viewer, OperationTypeNode.MUTATION, ['createContact'])).toMatch(/viewer key may only read/);
    expect(authorize(admin, OperationTypeNode.MUTATION, ['createContact'])).toBeUndefined();
  });
});

describe('roles', () => {
  const keys = parseApiKeys('admin:k1,app:k2,agent:k3,viewer:k4');
  const admin = keys.find('k1')!;
  const app = keys.find('k2')!;
  const agent = keys.find('k3')!;
  const viewer = keys.find('k4')!;
  const mutation = (caller: typeof admin, field: string) => authorize(caller, OperationTypeNode.MUTATION, [field]);
  const mayRun = (field: string) => [admin, app, agent, viewer].filter((c) => mutation(c, field) === undefined).map((c) => c.role);

  it('lets every role read', () => {
    for (const caller of [admin, app, agent, viewer]) {
      expect(
        authorize(caller, OperationTypeNode.QUERY, ['contacts', 'messages', 'conversations', 'templates', 'automations', 'messagingPolicy']),
      ).toBeUndefined();
    }
  });

  it('gives app contacts, events, sending, verification and surveys to send', () => {
    for (const field of [
      'createContact',
      'updateContact',
      'deleteContact',
      'importContacts',
      'unsubscribeContact',
      'resubscribeContact',
      'trackEvent',
      'sendMessage',
      'sendMessages',
      'scheduleMessage',
      'cancelScheduledMessage',
      'startVerification',
      'checkVerification',
      'sendSurvey',
    ]) {
      expect(mayRun(field), field).toEqual(['admin', 'app']);
    }
  });

  it('gives agent the conversations', () => {
    for (const field of ['replyToConversation', 'assignConversation', 'resolveConversation']) expect(mayRun(field), field).toEqual(['admin', 'agent']);
  });

  it('keeps templates, automations, policy, campaigns, survey design and maintenance for admin', () => {
    for (const field of [
      'createTemplate',
      'updateTemplate',
      'createAutomation',
      'setAutomationEnabled',
      'updateMessagingPolicy',
      'createCampaign',
      'launchCampaign',
      'cancelCampaign',
      'createSurvey',
      'runDormancySweep',
    ]) {
      expect(mayRun(field), field).toEqual(['admin']);
    }
  });

  it('closes a mutation nobody has listed yet to all but admin', () => {
    expect(ROLE_TABLE.mutation.launchRocket).toBeUndefined();
    expect(rolesFor('mutation', 'launchRocket')).toEqual(['admin']);
    expect(mayRun('launchRocket')).toEqual(['admin']);
  });

  it('names the field and the roles that may run it', () => {
    expect(mutation(app, 'createTemplate')).toBe('An app key may not run createTemplate; it needs a key with role admin.');
    expect(mutation(agent, 'createAutomation')).toBe('An agent key may not run createAutomation; it needs a key with role admin.');
    expect(mutation(agent, 'sendMessage')).toBe('An agent key may not run sendMessage; it needs a key with role admin or app.');
    expect(mutation(viewer, 'assignConversation')).toBe('A viewer key may only read; assignConversation needs a key with role admin or agent.');
    // Every root field counts, not only the first.
    expect(authorize(app, OperationTypeNode.MUTATION, ['sendMessage', 'updateMessagingPolicy'])).toMatch(/updateMessagingPolicy/);
    expect(authorize(app, OperationTypeNode.MUTATION, ['__typename'])).toBeUndefined();
  });

  it('opens the live inbox to agents and delivery progress to every role', () => {
    const subscription = (caller: typeof admin, field: string) => authorize(caller, OperationTypeNode.SUBSCRIPTION, [field]);
    for (const field of ['messageReceived', 'conversationUpdated']) {
      expect([admin, app, agent, viewer].filter((c) => !subscription(c, field)).map((c) => c.role)).toEqual(['admin', 'agent']);
    }
    expect([admin, app, agent, viewer].filter((c) => !subscription(c, 'messageStatusChanged')).map((c) => c.role)).toEqual(['admin', 'app', 'agent', 'viewer']);
    expect(subscription(viewer, 'messageReceived')).toBe('A viewer key may not subscribe to messageReceived; it needs a key with role admin or agent.');
    expect(subscription(app, 'someFutureFeed')).toMatch(/role admin\.$/);
  });

  it('finds root fields behind fragments, so they cannot slip past the table', () => {
    const document = parse(`
      mutation M { ...Harmless ... on Mutation { a: createTemplate(input: {}) { name } } }
      fragment Harmless on Mutation { sendMessage(input: {}) { id } ...Deeper }
      fragment Deeper on Mutation { updateMessagingPolicy(input: {}) { quietHoursStart } ...Harmless }
    `);
    const operation = document.definitions[0] as OperationDefinitionNode;
    expect(rootFieldsOf(operation, fragmentsOf(document)).sort()).toEqual(['createTemplate', 'sendMessage', 'updateMessagingPolicy']);
  });
});
