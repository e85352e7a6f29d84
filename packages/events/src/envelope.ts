import { uuidv7 } from 'uuidv7';
import { z } from 'zod';

/** CloudEvents 1.0, structured JSON mode — the envelope of every message on NATS (contract/events.md). */
export const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  time: z.string().datetime({ offset: true }),
  datacontenttype: z.literal('application/json').optional(),
  data: z.unknown(),
});

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}

export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json';

/** Time-ordered ids keep outbox scans and JetStream dedupe windows cheap. */
export function newId(): string {
  return uuidv7();
}

export function createEvent<T>(options: { source: string; type: string; data: T; id?: string; time?: Date }): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: options.id ?? newId(),
    source: options.source,
    type: options.type,
    time: (options.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    data: options.data,
  };
}
