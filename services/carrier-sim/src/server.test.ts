import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CarrierSimOptions } from './server';
import { sleep, startReceiver, startSim, waitFor, type Receiver, type StartedSim } from './test-support';

let receiver: Receiver;
let s: StartedSim;

async function setup(overrides: Partial<CarrierSimOptions> = {}): Promise<void> {
  await s?.sim.close();
  s = await startSim({ inboundUrl: `${receiver.url}/inbound?secret=abc`, ...overrides });
}

beforeEach(async () => {
  receiver = await startReceiver();
  s = await startSim({ inboundUrl: `${receiver.url}/inbound?secret=abc` });
});

afterEach(async () => {
  await s.sim.close();
  await receiver.close();
});

function dlrFields(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'mocean-from': 'Textloop',
    'mocean-text': 'Hello there',
    'mocean-dlr-mask': '1',
    'mocean-dlr-url': `${receiver.url}/dlr?secret=abc`,
    'mocean-resp-format': 'json',
    ...extra,
  };
}

const dlrs = () => receiver.posts.filter((p) => p.path.startsWith('/dlr'));
const inbound = () => receiver.posts.filter((p) => p.path.startsWith('/inbound'));

describe('sending', () => {
  it('accepts a message, delivers it to the handset and posts a delivery report', async () => {
    const res = await s.send(dlrFields({ 'mocean-to': '15551234567' }));
    expect(res.status).toBe(202);
    expect(res.body.messages).toHaveLength(1);
    const [msg] = res.body.messages;
    expect(msg).toMatchObject({ status: 0, receiver: '15551234567' });
    expect(msg.msgid).toMatch(/^CPASS_restapi_C\d{10}\.\d{4}$/);

    await waitFor(() => dlrs().length === 1);
    const dlr = dlrs()[0]!;
    expect(dlr.path).toBe('/dlr?secret=abc');
    expect(Object.fromEntries(dlr.form)).toEqual({
      'mocean-msgid': msg.msgid,
      'mocean-from': 'Textloop',
      'mocean-to': '15551234567',
      'mocean-dlr-status': '1',
      'mocean-error-code': '0',
    });

    const byE164 = await s.json('GET', `/api/handsets/${encodeURIComponent('+15551234567')}/messages`);
    expect(byE164.status).toBe(200);
    expect(byE164.body).toEqual([
      {
        msgid: msg.msgid,
        from: 'Textloop',
        to: '+15551234567',
        text: 'Hello there',
        segments: 1,
        coding: 1,
        receivedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    const byDigits = await s.json('GET', '/api/handsets/15551234567/messages');
    expect(byDigits.body).toEqual(byE164.body);
    const byRawPlus = await s.json('GET', '/api/handsets/+15551234567/messages');
    expect(byRawPlus.body).toEqual(byE164.body);

    // The receiver logs the post before the simulator has read the answer, so wait for the count.
    await waitFor(() => s.sim.stats().dlrPosted === 1);
    expect(s.sim.stats()).toMatchObject({ accepted: 1, delivered: 1, dlrPosted: 1, dlrFailed: 0, rejected: 0 });
    const stats = await s.json('GET', '/api/stats');
    expect(stats.body).toMatchObject({ accepted: 1, delivered: 1, dlrPosted: 1 });
  });

  it('sends no delivery report without mocean-dlr-mask=1', async () => {
    const res = await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-dlr-mask': '0' }));
    expect(res.status).toBe(202);
    await waitFor(() => s.sim.stats().delivered === 1);
    await sleep(30);
    expect(dlrs()).toHaveLength(0);
  });

  it('refuses wrong credentials and sends nothing', async () => {
    const res = await s.send({ ...dlrFields({ 'mocean-to': '15551234567' }), 'mocean-api-secret': 'nope' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ status: 1, err_msg: 'Authorization failed' });
    const missing = await s.send(dlrFields({ 'mocean-to': '15551234567' }), false);
    expect(missing.status).toBe(401);
    await sleep(30);
    expect(dlrs()).toHaveLength(0);
    expect(s.sim.stats()).toMatchObject({ accepted: 0, rejected: 2 });
  });

  it('gives every receiver its own result and msgid', async () => {
    const res = await s.send(dlrFields({ 'mocean-to': '15550000001, 15550000002,123,15550000003' }));
    expect(res.status).toBe(202);
    const messages = res.body.messages as Array<Record<string, unknown>>;
    expect(messages.map((m) => [m.receiver, m.status])).toEqual([
      ['15550000001', 0],
      ['15550000002', 0],
      ['123', 28],
      ['15550000003', 0],
    ]);
    const ids = messages.filter((m) => m.status === 0).map((m) => m.msgid);
    expect(new Set(ids).size).toBe(3);
    await waitFor(() => dlrs().length === 3);
    expect(new Set(dlrs().map((d) => d.form.get('mocean-msgid')))).toEqual(new Set(ids));
    for (const n of ['15550000001', '15550000002', '15550000003']) {
      const got = await s.json('GET', `/api/handsets/${n}/messages`);
      expect(got.body).toHaveLength(1);
    }
    expect(s.sim.stats()).toMatchObject({ accepted: 3, rejected: 1, delivered: 3 });
  });

  it('validates text and destination', async () => {
    const empty = await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-text': '' }));
    expect(empty.status).toBe(400);
    expect(empty.body.status).toBe(23);
    const long = await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-text': 'a'.repeat(1601) }));
    expect(long.body.status).toBe(29);
    const max = await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-text': 'a'.repeat(1600) }));
    expect(max.body.messages[0].status).toBe(0);
    const noTo = await s.send(dlrFields({ 'mocean-to': '' }));
    expect(noTo.body.status).toBe(28);
    const bad = await s.send(dlrFields({ 'mocean-to': '1555abc4567' }));
    expect(bad.status).toBe(202);
    expect(bad.body.messages[0]).toMatchObject({ status: 28, receiver: '1555abc4567' });
  });

  it('reports segments and coding on the handset', async () => {
    await s.send(dlrFields({ 'mocean-to': '15550000001', 'mocean-text': 'a'.repeat(161) }));
    await s.send(dlrFields({ 'mocean-to': '15550000002', 'mocean-text': 'Cost: 5€ 👍' }));
    await s.send(dlrFields({ 'mocean-to': '15550000003', 'mocean-text': 'plain', 'mocean-coding': '3' }));
    await waitFor(() => s.sim.stats().delivered === 3);
    const one = (await s.json('GET', '/api/handsets/15550000001/messages')).body[0];
    expect([one.segments, one.coding]).toEqual([2, 1]);
    const two = (await s.json('GET', '/api/handsets/15550000002/messages')).body[0];
    expect([two.segments, two.coding, two.text]).toEqual([1, 3, 'Cost: 5€ 👍']);
    const three = (await s.json('GET', '/api/handsets/15550000003/messages')).body[0];
    expect([three.segments, three.coding]).toEqual([1, 3]);
  });
});

describe('fault rules', () => {
  it('replaces and lists rules, normalising prefixes', async () => {
    const put = await s.json('PUT', '/api/rules', [
      { match: '1555', outcome: 'undelivered' },
      { match: '+44', outcome: 'EXPIRED', probability: 0.5, dlrDelayMs: 10, duplicateDlr: true },
    ]);
    expect(put.status).toBe(200);
    const got = await s.json('GET', '/api/rules');
    expect(got.body).toEqual([
      { match: '+1555', outcome: 'UNDELIVERED', probability: 1, duplicateDlr: false, duplicateInbound: false },
      { match: '+44', outcome: 'EXPIRED', probability: 0.5, dlrDelayMs: 10, duplicateDlr: true, duplicateInbound: false },
    ]);
    const bad = await s.json('PUT', '/api/rules', [{ match: '+1555', outcome: 'EXPLODE' }]);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/outcome/);
    const notArray = await s.json('PUT', '/api/rules', { match: '+1' });
    expect(notArray.status).toBe(400);
    expect((await s.json('GET', '/api/rules')).body).toHaveLength(2);
  });

  it('UNDELIVERED and EXPIRED post failure reports and never reach the handset', async () => {
    await s.json('PUT', '/api/rules', [
      { match: '+1555000', outcome: 'UNDELIVERED', errorCode: 7 },
      { match: '+1555', outcome: 'EXPIRED' },
      { match: '+1', outcome: 'UNDELIVERED' },
    ]);
    const a = await s.send(dlrFields({ 'mocean-to': '15550001111' }));
    const b = await s.send(dlrFields({ 'mocean-to': '15559999999' }));
    const c = await s.send(dlrFields({ 'mocean-to': '12125551234' }));
    for (const r of [a, b, c]) expect(r.body.messages[0].status).toBe(0);
    await waitFor(() => dlrs().length === 3);
    const byId = new Map(dlrs().map((d) => [d.form.get('mocean-msgid'), d.form]));
    const dlrA = byId.get(a.body.messages[0].msgid)!;
    expect([dlrA.get('mocean-dlr-status'), dlrA.get('mocean-error-code')]).toEqual(['2', '7']);
    const dlrB = byId.get(b.body.messages[0].msgid)!;
    expect(dlrB.get('mocean-dlr-status')).toBe('3');
    const dlrC = byId.get(c.body.messages[0].msgid)!;
    expect([dlrC.get('mocean-dlr-status'), dlrC.get('mocean-error-code')]).toEqual(['2', '1']);
    for (const n of ['15550001111', '15559999999', '12125551234']) {
      expect((await s.json('GET', `/api/handsets/${n}/messages`)).body).toEqual([]);
    }
    expect(s.sim.stats()).toMatchObject({ accepted: 3, delivered: 0, undelivered: 2, expired: 1 });
  });

  it('REJECTED and THROTTLED answer per receiver and deliver nothing', async () => {
    await s.json('PUT', '/api/rules', [
      { match: '+1666', outcome: 'REJECTED' },
      { match: '+1777', outcome: 'THROTTLED' },
    ]);
    const res = await s.send(dlrFields({ 'mocean-to': '16660000000,17770000000,18880000000' }));
    expect(res.status).toBe(202);
    const [rejected, throttled, ok] = res.body.messages;
    expect(rejected).toMatchObject({ status: 5, receiver: '16660000000' });
    expect(rejected.err_msg).toBeTruthy();
    expect(rejected.msgid).toBeUndefined();
    expect(throttled).toMatchObject({ status: 32, receiver: '17770000000' });
    expect(ok).toMatchObject({ status: 0, receiver: '18880000000' });
    await waitFor(() => dlrs().length === 1);
    await sleep(30);
    expect(dlrs()).toHaveLength(1);
    expect(dlrs()[0]!.form.get('mocean-to')).toBe('18880000000');
    expect(s.sim.stats()).toMatchObject({ accepted: 1, rejected: 2, throttled: 1 });
  });

  it('HTTP_500 fails the whole request and accepts nothing', async () => {
    await s.json('PUT', '/api/rules', [{ match: '+1500', outcome: 'HTTP_500' }]);
    const res = await s.send(dlrFields({ 'mocean-to': '18880000000,15000000000' }));
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ status: 45, err_msg: expect.any(String) });
    await sleep(30);
    expect(dlrs()).toHaveLength(0);
    expect(s.sim.stats()).toMatchObject({ accepted: 0, serverErrors: 1 });
  });

  it('TIMEOUT never answers, and close() still finishes promptly', async () => {
    await s.json('PUT', '/api/rules', [{ match: '+1999', outcome: 'TIMEOUT' }]);
    const started = Date.now();
    const form = new URLSearchParams({ 'mocean-api-key': 'test-key', 'mocean-api-secret': 'test-secret', ...dlrFields({ 'mocean-to': '19990000000' }) });
    await expect(fetch(`${s.url}/rest/2/sms`, { method: 'POST', body: form, signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(s.sim.stats()).toMatchObject({ accepted: 0, timeouts: 1 });

    // A second hung request that the client never abandons: close() must cut it.
    const pending = fetch(`${s.url}/rest/2/sms`, { method: 'POST', body: form }).catch((e: unknown) => e);
    await waitFor(() => s.sim.stats().timeouts === 2);
    const closeStarted = Date.now();
    await s.sim.close();
    expect(Date.now() - closeStarted).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
    await setup();
  });

  it('duplicateDlr posts the same report twice', async () => {
    await s.json('PUT', '/api/rules', [{ match: '+1555', outcome: 'DELIVERED', duplicateDlr: true, dlrDelayMs: 1 }]);
    const res = await s.send(dlrFields({ 'mocean-to': '15551234567' }));
    await waitFor(() => dlrs().length === 2);
    const [first, second] = dlrs();
    expect(first!.form.toString()).toBe(second!.form.toString());
    expect(first!.form.get('mocean-msgid')).toBe(res.body.messages[0].msgid);
    await waitFor(() => s.sim.stats().dlrPosted === 2);
    expect(s.sim.stats()).toMatchObject({ delivered: 1, dlrPosted: 2 });
  });

  it('a rule whose probability misses falls through to the next rule', async () => {
    await setup({ random: () => 0.7 });
    await s.json('PUT', '/api/rules', [
      { match: '+1555', outcome: 'REJECTED', probability: 0.5 },
      { match: '+1555', outcome: 'THROTTLED', probability: 0.8 },
    ]);
    const res = await s.send(dlrFields({ 'mocean-to': '15551234567' }));
    expect(res.body.messages[0].status).toBe(32);
    await s.json('PUT', '/api/rules', [{ match: '+1555', outcome: 'REJECTED', probability: 0 }]);
    const res2 = await s.send(dlrFields({ 'mocean-to': '15551234567' }));
    expect(res2.body.messages[0].status).toBe(0);
  });
});

describe('delivery report retries', () => {
  it('retries a report the platform answered with 500', async () => {
    receiver.statuses.push(500);
    const res = await s.send(dlrFields({ 'mocean-to': '15551234567' }));
    await waitFor(() => dlrs().length === 1);
    expect(dlrs()[0]!.form.get('mocean-msgid')).toBe(res.body.messages[0].msgid);
    await waitFor(() => s.sim.stats().dlrPosted === 1);
    expect(s.sim.stats()).toMatchObject({ dlrFailed: 1, dlrPosted: 1 });
  });

  it('retries when nothing listens, then gives up after maxAttempts', async () => {
    await setup({ maxAttempts: 3, retryBaseMs: 5 });
    const dead = await startReceiver();
    const deadUrl = dead.url;
    await dead.close();
    await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-dlr-url': `${deadUrl}/dlr` }));
    await waitFor(() => s.sim.stats().dlrFailed === 3);
    await sleep(60);
    expect(s.sim.stats()).toMatchObject({ dlrFailed: 3, dlrPosted: 0 });
  });
});

describe('idempotency (textloop-ref)', () => {
  it('answers a repeat with the same msgid and does not deliver again', async () => {
    let clock = Date.parse('2030-01-01T00:00:00Z');
    await setup({ now: () => new Date(clock) });
    const fields = dlrFields({ 'mocean-to': '15551234567,15557654321', 'textloop-ref': 'msg-42' });
    const first = await s.send(fields);
    const second = await s.send(fields);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(first.body.messages[0].msgid).not.toBe(first.body.messages[1].msgid);
    await waitFor(() => dlrs().length === 2);
    await sleep(30);
    expect(dlrs()).toHaveLength(2);
    expect((await s.json('GET', '/api/handsets/15551234567/messages')).body).toHaveLength(1);
    expect(s.sim.stats()).toMatchObject({ accepted: 2, deduplicated: 2, delivered: 2 });

    // Another ref is another message.
    const other = await s.send({ ...fields, 'textloop-ref': 'msg-43' });
    expect(other.body.messages[0].msgid).not.toBe(first.body.messages[0].msgid);

    // After 24 hours the ref is forgotten.
    clock += 24 * 60 * 60 * 1000 + 1;
    const later = await s.send(fields);
    expect(later.body.messages[0].msgid).not.toBe(first.body.messages[0].msgid);
    expect(s.sim.stats().deduplicated).toBe(2);
  });

  it('matches one reference per receiver when a request lists them one for one, however the resend is grouped', async () => {
    await setup();
    const first = await s.send(dlrFields({ 'mocean-to': '15551230001,15551230002,15551230003', 'textloop-ref': 'm-1,m-2,m-3' }));
    expect(first.body.messages.map((m: { status: number }) => m.status)).toEqual([0, 0, 0]);
    // Resent in other groups, next to a new message: the three are the same messages, m-4 is new.
    const again = await s.send(dlrFields({ 'mocean-to': '15551230003,15551230004', 'textloop-ref': 'm-3,m-4' }));
    const alone = await s.send(dlrFields({ 'mocean-to': '15551230001', 'textloop-ref': 'm-1' }));
    expect(again.body.messages[0].msgid).toBe(first.body.messages[2].msgid);
    expect(alone.body.messages[0].msgid).toBe(first.body.messages[0].msgid);
    expect(s.sim.stats()).toMatchObject({ accepted: 4, deduplicated: 2 });
    // A reference under another number is another message.
    const swapped = await s.send(dlrFields({ 'mocean-to': '15551230002,15551230001', 'textloop-ref': 'm-1,m-2' }));
    expect(swapped.body.messages.map((m: { msgid: string }) => m.msgid)).not.toContain(first.body.messages[0].msgid);
  });

  it('does not remember refs of refused sends', async () => {
    await s.json('PUT', '/api/rules', [{ match: '+1555', outcome: 'THROTTLED' }]);
    const fields = dlrFields({ 'mocean-to': '15551234567', 'textloop-ref': 'retry-me' });
    expect((await s.send(fields)).body.messages[0].status).toBe(32);
    await s.json('PUT', '/api/rules', []);
    const retry = await s.send(fields);
    expect(retry.body.messages[0].status).toBe(0);
    expect(s.sim.stats().deduplicated).toBe(0);
  });
});

describe('handset replies', () => {
  it('posts an inbound message in Mocean format and records it in the thread', async () => {
    await setup({ now: () => new Date('2031-02-03T04:05:06.789Z') });
    const res = await s.json('POST', `/api/handsets/${encodeURIComponent('+15551234567')}/reply`, {
      to: 'Textloop',
      text: '  stop please ',
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ ok: true });
    await waitFor(() => inbound().length === 1);
    const post = inbound()[0]!;
    expect(post.path).toBe('/inbound?secret=abc');
    expect(Object.fromEntries(post.form)).toEqual({
      'mocean-from': '15551234567',
      'mocean-to': 'Textloop',
      'mocean-text': '  stop please ',
      'mocean-keyword': 'STOP',
      'mocean-coding': '1',
      'mocean-time': '2031-02-03 04:05:06',
    });
    await waitFor(() => s.sim.stats().inboundPosted === 1);

    // Number senders lose the '+'; non-GSM text is UCS-2.
    await s.json('POST', '/api/handsets/15551234567/reply', { to: '+15550009999', text: 'да' });
    await waitFor(() => inbound().length === 2);
    expect(inbound()[1]!.form.get('mocean-to')).toBe('15550009999');
    expect(inbound()[1]!.form.get('mocean-coding')).toBe('3');
    expect(inbound()[1]!.form.get('mocean-keyword')).toBe('ДА');

    // Replies are not "received" messages, but they are on the page.
    expect((await s.json('GET', '/api/handsets/15551234567/messages')).body).toEqual([]);
    const page = await s.json('GET', '/');
    expect(page.body).toContain('stop please');
  });

  it('retries an inbound post the platform refused', async () => {
    receiver.statuses.push(503);
    await s.json('POST', '/api/handsets/15551234567/reply', { to: 'Textloop', text: 'YES' });
    await waitFor(() => inbound().length === 1);
    await waitFor(() => s.sim.stats().inboundPosted === 1);
    expect(s.sim.stats()).toMatchObject({ inboundPosted: 1, inboundFailed: 1 });
  });

  it('rejects bad reply bodies with a clear 400', async () => {
    const noText = await s.json('POST', '/api/handsets/15551234567/reply', { to: 'Textloop' });
    expect(noText.status).toBe(400);
    expect(noText.body.error).toMatch(/text/);
    const notJson = await s.json('POST', '/api/handsets/15551234567/reply', '{"to":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/JSON/);
    const badPhone = await s.json('POST', '/api/handsets/abc/reply', { to: 'Textloop', text: 'hi' });
    expect(badPhone.status).toBe(400);
    expect(badPhone.body.error).toMatch(/phone/);
  });

  it('can point replies elsewhere at run time, or nowhere', async () => {
    const other = await startReceiver();
    try {
      const put = await s.json('PUT', '/api/config', { inboundUrl: `${other.url}/in` });
      expect(put.body.inboundUrl).toBe(`${other.url}/in`);
      await s.json('POST', '/api/handsets/15551234567/reply', { to: 'Textloop', text: 'hi' });
      await waitFor(() => other.posts.length === 1);
      expect(inbound()).toHaveLength(0);

      expect((await s.json('PUT', '/api/config', { inboundUrl: 'ftp://x' })).status).toBe(400);
      await s.json('PUT', '/api/config', { inboundUrl: null });
      const none = await s.json('POST', '/api/handsets/15551234567/reply', { to: 'Textloop', text: 'hi' });
      expect(none.status).toBe(409);
    } finally {
      await other.close();
    }
  });
});

describe('control API and robustness', () => {
  it('lists and clears handsets, and resets everything', async () => {
    await s.send(dlrFields({ 'mocean-to': '15550000001,15550000002' }));
    await waitFor(() => s.sim.stats().delivered === 2);
    const list = await s.json('GET', '/api/handsets');
    expect(list.body.map((h: { phone: string }) => h.phone).sort()).toEqual(['+15550000001', '+15550000002']);

    expect((await s.json('DELETE', '/api/handsets')).status).toBe(200);
    expect((await s.json('GET', '/api/handsets')).body).toEqual([]);
    expect(s.sim.stats().accepted).toBe(2); // stats survive

    await s.json('PUT', '/api/rules', [{ match: '+1', outcome: 'REJECTED' }]);
    await s.send(dlrFields({ 'mocean-to': '15550000001', 'textloop-ref': 'r1' }));
    expect((await s.json('POST', '/api/reset')).status).toBe(200);
    expect(s.sim.stats().accepted).toBe(0);
    expect((await s.json('GET', '/api/rules')).body).toEqual([]);
    const after = await s.send(dlrFields({ 'mocean-to': '15550000001', 'textloop-ref': 'r1' }));
    expect(after.body.messages[0].status).toBe(0);
  });

  it('answers healthz, 404 and 405 as JSON', async () => {
    expect(await s.json('GET', '/healthz')).toEqual({ status: 200, body: { status: 'ok', pid: process.pid } });
    const missing = await s.json('GET', '/nope');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBeTruthy();
    const wrong = await fetch(`${s.url}/rest/2/sms`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await s.json('DELETE', '/api/stats')).status).toBe(405);
  });

  it('survives garbage input', async () => {
    const form = await fetch(`${s.url}/rest/2/sms`, { method: 'POST', body: '%%%&&&==\u0000\uffff' });
    expect(form.status).toBe(401);
    const json = await fetch(`${s.url}/rest/2/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"mocean-api-key":',
    });
    expect(json.status).toBe(401);
    const badRules = await s.json('PUT', '/api/rules', 'not json at all');
    expect(badRules.status).toBe(400);
    const badEncoding = await s.json('GET', '/api/handsets/%E0%A4%A/messages');
    expect(badEncoding.status).toBe(400);
    const huge = await fetch(`${s.url}/api/rules`, { method: 'PUT', body: 'x'.repeat(300 * 1024) });
    expect(huge.status).toBe(413);

    // Not even HTTP.
    await new Promise<void>((resolve) => {
      const socket = connect(Number(new URL(s.url).port), '127.0.0.1', () => socket.write('\u0001\u0002 garbage\r\n\r\n'));
      socket.on('data', () => undefined);
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    expect((await s.json('GET', '/healthz')).status).toBe(200);
  });

  it('escapes message text on the web page', async () => {
    await s.send(dlrFields({ 'mocean-to': '15551234567', 'mocean-text': '<script>alert("x")</script> & <b>', 'mocean-from': '<img src=x>' }));
    await waitFor(() => s.sim.stats().delivered === 1);
    const res = await fetch(`${s.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;');
    expect(html).toContain('&lt;img src=x&gt;');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x>');
    expect(html).toContain('+15551234567');
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[a-z]/i); // no external assets
    expect(html).not.toContain('secret=abc'); // the webhook secret stays off the page
    expect((await s.json('GET', '/api/config')).body.inboundUrl).toBe(`${receiver.url}/inbound?…`);
  });
});
