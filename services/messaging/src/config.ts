import { ConfigError, dataDir, loadSecret, portOf } from '@textloop/service-kit';
import { loadKeywordConfig, type KeywordConfig } from './keywords';

/** Everything messaging reads from its environment, in one place (see the README's table). */
export interface MessagingConfig {
  provider: 'mocean';
  mocean: {
    apiUrl: string;
    apiKey: string;
    apiSecret: string;
    /** keep-alive connections to the provider */
    connections: number;
    /** headers and body timeout of one provider request */
    timeoutMs: number;
    /** receivers one request may carry when messages share sender and text */
    maxRecipients: number;
  };
  /** Base URL the provider calls back; delivery reports go to <base>/webhooks/mocean/dlr. */
  publicWebhookUrl: string;
  webhookSecret: string;
  defaultSender: string;
  /** ISO country → sender ID or number */
  sendersByCountry: Record<string, string>;
  dispatch: {
    enabled: boolean;
    leaseMs: number;
    batchSize: number;
    concurrency: number;
    pollMs: number;
    maxAttempts: number;
    retryBaseMs: number;
    retryMaxMs: number;
  };
  deliveryReports: { flushMs: number; batchSize: number };
  /** Release of SCHEDULED messages (quiet hours): longest sleep before looking for due ones again. */
  release: { pollMs: number };
  /** How long sendMessage waits for a contact that the projection has not seen yet. */
  contactWaitMs: number;
  /**
   * STOP/START/HELP: KEYWORDS_STOP, KEYWORDS_START, KEYWORDS_HELP (comma lists), REPLY_STOP,
   * REPLY_START, REPLY_HELP (texts with {{ program }} and {{ contact }}), PROGRAM_NAME, SUPPORT_CONTACT.
   */
  keywords: KeywordConfig;
}

export const SIMULATOR_CREDENTIALS = { apiKey: 'textloop-sim', apiSecret: 'textloop-sim-secret' } as const;

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  return n;
}

function url(name: string, raw: string): string {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

/** "US:+15005550006,GB:Textloop" → { US: '+15005550006', GB: 'Textloop' } */
export function parseSenders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw?.trim()) return out;
  for (const part of raw.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const colon = item.indexOf(':');
    const country = colon > 0 ? item.slice(0, colon).trim().toUpperCase() : '';
    const sender = colon > 0 ? item.slice(colon + 1).trim() : '';
    if (!/^[A-Z]{2}$/.test(country) || !sender) {
      throw new ConfigError(`SMS_SENDERS must look like "US:+15005550006,GB:Textloop" (country code, colon, sender); cannot read "${item}"`);
    }
    out[country] = sender;
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv): MessagingConfig {
  const provider = (env.SMS_PROVIDER || 'mocean').toLowerCase();
  if (provider !== 'mocean') throw new ConfigError(`SMS_PROVIDER "${env.SMS_PROVIDER}" is not supported; use "mocean" (any Mocean-compatible endpoint)`);
  const keySet = Boolean(env.MOCEAN_API_KEY);
  const apiUrl = url('MOCEAN_API_URL', env.MOCEAN_API_URL || (keySet ? 'https://rest.moceanapi.com' : `http://127.0.0.1:${portOf('carrier-sim', env)}`));
  const publicWebhookUrl = url('PUBLIC_WEBHOOK_URL', env.PUBLIC_WEBHOOK_URL || `http://127.0.0.1:${portOf('messaging', env)}`);
  const leaseMs = int(env, 'DISPATCH_LEASE_MS', 30_000, 100, 3_600_000);
  const timeoutMs = int(env, 'PROVIDER_TIMEOUT_MS', 10_000, 100, 600_000);
  return {
    provider: 'mocean',
    mocean: {
      apiUrl,
      apiKey: env.MOCEAN_API_KEY || SIMULATOR_CREDENTIALS.apiKey,
      apiSecret: env.MOCEAN_API_SECRET || SIMULATOR_CREDENTIALS.apiSecret,
      connections: int(env, 'PROVIDER_CONNECTIONS', 64, 1, 1024),
      timeoutMs,
      // Each receiver costs about 50 characters of the callback URL (its number and our id).
      maxRecipients: int(env, 'PROVIDER_MAX_RECIPIENTS', 20, 1, 100),
    },
    publicWebhookUrl,
    webhookSecret: env.WEBHOOK_SECRET || loadSecret(dataDir(env), 'webhook-secret', undefined),
    defaultSender: env.SMS_SENDER_ID?.trim() || 'Textloop',
    sendersByCountry: parseSenders(env.SMS_SENDERS),
    dispatch: {
      enabled: !['0', 'false', 'off', 'no'].includes((env.DISPATCH_ENABLED ?? '').trim().toLowerCase()),
      leaseMs,
      batchSize: int(env, 'DISPATCH_BATCH_SIZE', 200, 1, 5000),
      concurrency: int(env, 'DISPATCH_CONCURRENCY', 128, 1, 4096),
      pollMs: int(env, 'DISPATCH_POLL_MS', 200, 5, 60_000),
      // 20 attempts with the default backoff keep retrying for about an hour: an outage delays messages, it does not fail them.
      maxAttempts: int(env, 'SEND_MAX_ATTEMPTS', 20, 1, 100),
      retryBaseMs: int(env, 'SEND_RETRY_BASE_MS', 1000, 1, 3_600_000),
      retryMaxMs: int(env, 'SEND_RETRY_MAX_MS', 300_000, 1, 86_400_000),
    },
    deliveryReports: {
      flushMs: int(env, 'DLR_FLUSH_MS', 10, 0, 10_000),
      batchSize: int(env, 'DLR_BATCH_SIZE', 500, 1, 10_000),
    },
    release: {
      // How often (at most) the scheduled-release loop looks for due SCHEDULED messages; it also wakes at the earliest one.
      pollMs: int(env, 'RELEASE_POLL_MS', 5000, 5, 60_000),
    },
    contactWaitMs: int(env, 'CONTACT_WAIT_MS', 2000, 0, 60_000),
    keywords: loadKeywordConfig(env),
  };
}
