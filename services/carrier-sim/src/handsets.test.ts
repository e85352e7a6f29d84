import { describe, expect, it } from 'vitest';
import { HandsetStore, type ReceivedMessage } from './handsets';

function msg(n: number): ReceivedMessage {
  return { msgid: `m${n}`, from: 'Textloop', to: '+1', text: `t${n}`, segments: 1, coding: 1, receivedAt: `2030-01-01T00:00:${n}` };
}

describe('HandsetStore', () => {
  it('keeps only the newest messages of a handset', () => {
    const store = new HandsetStore(3, 10, 100);
    for (let i = 1; i <= 5; i++) store.receive('15550000001', msg(i));
    expect(store.get('15550000001')!.received.map((m) => m.msgid)).toEqual(['m3', 'm4', 'm5']);
    expect(store.get('15550000001')!.thread).toHaveLength(3);
  });

  it('forgets the least recently active handset when over the handset or message budget', () => {
    const byCount = new HandsetStore(10, 2, 100);
    byCount.receive('15550000001', msg(1));
    byCount.receive('15550000002', msg(2));
    byCount.receive('15550000001', msg(3)); // 1 is now the most recent
    byCount.receive('15550000003', msg(4));
    expect(byCount.get('15550000002')).toBeUndefined();
    expect(byCount.recent(10).map((h) => h.phone)).toEqual(['+15550000003', '+15550000001']);

    const byMessages = new HandsetStore(10, 100, 4);
    byMessages.receive('15550000001', msg(1));
    byMessages.receive('15550000001', msg(2));
    byMessages.receive('15550000002', msg(3));
    byMessages.receive('15550000002', msg(4));
    byMessages.receive('15550000003', msg(5));
    expect(byMessages.get('15550000001')).toBeUndefined();
    expect(byMessages.size).toBe(2);
  });

  it('records replies in the thread only', () => {
    const store = new HandsetStore(10, 10, 100);
    store.receive('15550000001', msg(1));
    store.send('15550000001', { id: 'MO1', from: '+15550000001', to: 'Textloop', text: 'STOP', segments: 1, coding: 1, sentAt: 'x' });
    const h = store.get('15550000001')!;
    expect(h.received).toHaveLength(1);
    expect(h.thread.map((e) => e.direction)).toEqual(['in', 'out']);
    expect(store.summaries(10)).toEqual([{ phone: '+15550000001', received: 1, sent: 1, lastActivityAt: 'x' }]);
  });
});
