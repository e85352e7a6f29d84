import { RetentionPolicy, StorageType, type JetStreamManager } from 'nats';

/** Streams of contract/events.md; each is created by the service that owns it. */
export const streams = {
  CONTACTS: { subjects: ['contacts.>'] },
  EVENTS: { subjects: ['events.>'] },
  MESSAGING: { subjects: ['messaging.>'] },
  SCHEDULING: { subjects: ['scheduling.>'] },
  FEEDBACK: { subjects: ['feedback.>'] },
} as const;

export type StreamName = keyof typeof streams;

/** Publish dedupe window: a re-published outbox row (crash before it was marked) is dropped by the server. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 60 * 1e9;

/** Idempotent: creates the stream or leaves an existing one as it is. */
export async function ensureStream(jsm: JetStreamManager, name: StreamName): Promise<void> {
  const want = streams[name];
  try {
    await jsm.streams.info(name);
  } catch {
    try {
      await jsm.streams.add({
        name,
        subjects: [...want.subjects],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        duplicate_window: DUPLICATE_WINDOW_NS,
        max_age: 14 * 24 * 3600 * 1e9,
      });
    } catch (err) {
      // Another instance created it between our info and add.
      await jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
}
