import { createClient, type Client, type ClientOptions } from 'graphql-ws';
import WebSocket from 'ws';

export type { Client as LiveClient };

/**
 * A graphql-ws client for Node (scripts, tests) on the gateway's live updates, authenticated with
 * an API key. `url` is the gateway's /graphql address, http(s) or ws(s). Browsers use graphql-ws's
 * createClient directly with the same connectionParams.
 */
export function createLiveClient(url: string, apiKey: string, options: Partial<ClientOptions> = {}): Client {
  return createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${apiKey}` },
    retryAttempts: 0,
    ...options,
  });
}
