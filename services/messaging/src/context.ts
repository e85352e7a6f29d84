import type { Kysely } from 'kysely';
import type { NatsConnection } from 'nats';
import type { Clock, Logger, OutboxRelay } from '@textloop/service-kit';
import type { MessagingConfig } from './config';
import type { Database } from './db/database';
import type { TemplateRenderer } from './rendering';

/** What the domain modules need: built once in createServer from the kit's deps. */
export interface MessagingContext {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  outbox: Pick<OutboxRelay, 'kick'>;
  config: MessagingConfig;
  renderer: TemplateRenderer;
  /** For request/reply to other services (rpc.*); absent in tests that run without NATS. */
  nats?: NatsConnection;
  /** Wakes the dispatcher after new due messages were committed. */
  kickDispatcher(): void;
}
