import type { Kysely } from 'kysely';

/**
 * The service that asked for a message by command (messaging.cmd.send / .cmd.verify from
 * textloop/<service>). Its status events are also copied to messaging.notify.<service>.<status>,
 * so that service consumes only the statuses of its own messages. Null for messages sent through
 * GraphQL, inbound messages, and commands from outside Textloop.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('requester', 'text').execute();
}
