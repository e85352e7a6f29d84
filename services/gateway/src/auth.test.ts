import { describe, expect, it } from 'vitest';
import { OperationTypeNode } from 'graphql';
import { authenticate, authorize, DEV_API_KEY, loadApiKeys, parseApiKeys } from './auth';

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
