import { describe, expect, it } from 'vitest';
import { createEvent, newId } from './envelope';
import { notifySubject, requesterOf, schemaFor, statusSubjectOfNotify } from './subjects';

describe('newId', () => {
  it('gives distinct, time-ordered UUIDv7s across many refills of its random pool', () => {
    const ids = Array.from({ length: 5000 }, () => newId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Sorted as strings = sorted by creation: what outbox scans (order by id) rely on.
    expect([...ids].sort()).toEqual(ids);
    expect(createEvent({ source: 'textloop/test', type: 't', data: {} }).id).not.toBe(ids.at(-1));
  });
});

describe('status copies for requesters', () => {
  it('maps status subjects to a service’s notify subjects and back, validating copies like the originals', () => {
    expect(notifySubject('scheduling', 'messaging.message.delivered')).toBe('messaging.notify.scheduling.delivered');
    expect(statusSubjectOfNotify('messaging.notify.feedback.failed')).toBe('messaging.message.failed');
    expect(statusSubjectOfNotify('messaging.notify.feedback.a.b')).toBeUndefined();
    expect(statusSubjectOfNotify('messaging.message.sent')).toBeUndefined();
    expect(() => notifySubject('scheduling', 'messaging.cmd.send')).toThrow(/not a message status subject/);
    expect(schemaFor('messaging.notify.scheduling.sent')).toBe(schemaFor('messaging.message.sent'));
  });

  it('names the requester only for Textloop services', () => {
    expect(requesterOf('textloop/scheduling')).toBe('scheduling');
    expect(requesterOf('textloop/feedback')).toBe('feedback');
    expect(requesterOf('shop/backend')).toBeNull();
    expect(requesterOf('textloop/Bad.Name')).toBeNull();
    expect(requesterOf('textloop/')).toBeNull();
  });
});
