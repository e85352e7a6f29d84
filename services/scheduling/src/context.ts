import type { Kysely } from 'kysely';
import type { NatsConnection } from 'nats';
import type { Clock, Logger, OutboxRelay } from '@textloop/service-kit';
import type { Database } from './db/database';

/** What scheduling's domain modules need, built once in createServer from the kit's deps. */
export interface SchedulingContext {
  db: Kysely<Database>;
  clock: Clock;
  logger: Logger;
  outbox: Pick<OutboxRelay, 'kick'>;
  /** for request/reply to contacts, messaging and feedback */
  nats: NatsConnection;
  /** Wakes the timer loop after steps or scheduled messages were committed. */
  kickTimers(): void;
  /** Wakes the campaign runner after a campaign was scheduled, launched or given recipients. */
  kickCampaigns(): void;
  /** After an automation was created, enabled or disabled: the message.delivered feed checks whether it is needed. */
  automationsChanged(): void;
  campaigns: {
    /** contacts asked per rpc.contacts.audience page (CAMPAIGN_AUDIENCE_PAGE_SIZE) */
    audiencePageSize: number;
  };
}

export const EVENT_SOURCE = 'textloop/scheduling';
