import { describe, expect, it } from 'vitest';
import { parseSenders } from './config';
import { callbackMessageId, callbackQuery, parseDeliveryReport } from './delivery-reports';
import { retryDelayMs, takeGroup, type Claimed } from './dispatcher';
import { GroupCommit } from './group-commit';
import { parseInbound } from './inbound';
import { interpretMoceanReply, MoceanProvider } from './providers/mocean';
import { contactContext, TemplateRenderer, TemplateRenderError, TemplateSyntaxError } from './rendering';
import { advances } from './status';

describe('templates', () => {
  const renderer = new TemplateRenderer();

  it('lists the variables a body reads from outside', () => {
    expect(renderer.variables('Hi {{ contact.firstName | default: "there" }}, order {{ orderId }} {% for i in items %}{{ i.name }}{% endfor %}')).toEqual([
      'contact.firstName',
      'orderId',
      'items',
    ]);
  });

  it('is strict about unknown variables but lets default handle a null contact field', () => {
    const contact = contactContext(undefined, { phone: '+14155550100' });
    expect(renderer.render('Hi {{ contact.firstName | default: "there" }}', { contact, variables: {} })).toBe('Hi there');
    expect(() => renderer.render('Order {{ orderId }}', { contact, variables: {} })).toThrow(TemplateRenderError);
    try {
      renderer.render('Order {{ orderId }}', { contact, variables: {} });
    } catch (err) {
      expect((err as TemplateRenderError).variable).toBe('orderId');
      expect((err as Error).message).toContain('"orderId"');
    }
  });

  it('rejects unknown filters and file-system tags at parse time', () => {
    expect(() => renderer.parse('{{ x | nope }}')).toThrow(TemplateSyntaxError);
    expect(() => renderer.parse("{% include '/etc/passwd' %}")).toThrow(/include/);
    expect(() => renderer.parse('{{ x ')).toThrow(TemplateSyntaxError);
  });

  it('does not let a variable impersonate the contact', () => {
    const contact = contactContext(undefined, { phone: '+14155550100' });
    expect(renderer.render('{{ contact.phone }}', { contact, variables: { contact: { phone: 'evil' } } })).toBe('+14155550100');
  });
});

describe('Mocean replies', () => {
  it('accepts a 202 with status 0', () => {
    expect(interpretMoceanReply(202, { messages: [{ status: 0, receiver: '60123456789', msgid: 'CPASS_1' }] })).toEqual({
      ok: true,
      providerMessageId: 'CPASS_1',
    });
  });
  it('retries throttling, system errors and 5xx', () => {
    expect(interpretMoceanReply(202, { messages: [{ status: 32, err_msg: 'throttled' }] })).toMatchObject({ ok: false, transient: true });
    expect(interpretMoceanReply(500, { status: 45, err_msg: 'System error' })).toMatchObject({ ok: false, transient: true });
    expect(interpretMoceanReply(503, undefined)).toMatchObject({ ok: false, transient: true, code: 'HTTP_503' });
  });
  it('gives up on rejections, keeping the provider code and message', () => {
    const r = interpretMoceanReply(202, { messages: [{ status: 5, err_msg: 'Destination number black-listed' }] });
    expect(r).toEqual({ ok: false, transient: false, code: 'MOCEAN_5', message: 'Mocean status 5: Destination number black-listed' });
    expect(interpretMoceanReply(401, { status: 1, err_msg: 'Authorization failed' })).toMatchObject({ transient: false, code: 'MOCEAN_1' });
  });
});

describe('Mocean adapter on the wire', () => {
  it('posts the documented form fields, UTF-8 text and our reference', async () => {
    const { createServer } = await import('node:http');
    let form: URLSearchParams | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ messages: [{ status: 0, receiver: '14155550100', msgid: 'CPASS_9' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const provider = new MoceanProvider({ apiUrl: `http://127.0.0.1:${port}/`, apiKey: 'k&y', apiSecret: 's=c', connections: 2, timeoutMs: 1000 });
    try {
      const result = await provider.send({
        messageId: 'm-1',
        from: 'Text loop',
        to: '+14155550100',
        text: 'Hi “you” 👋 & 50% off+',
        encoding: 'UCS2',
        dlrUrl: 'http://x/dlr?secret=a&mid=m-1',
      });
      expect(result).toEqual({ ok: true, providerMessageId: 'CPASS_9' });
      expect(Object.fromEntries(form!)).toEqual({
        'mocean-api-key': 'k&y',
        'mocean-api-secret': 's=c',
        'mocean-dlr-mask': '1',
        'mocean-resp-format': 'json',
        'mocean-from': 'Text loop',
        'mocean-to': '14155550100',
        'mocean-text': 'Hi “you” 👋 & 50% off+',
        'mocean-coding': '3',
        'mocean-dlr-url': 'http://x/dlr?secret=a&mid=m-1',
        'textloop-ref': 'm-1',
      });
    } finally {
      await provider.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('sends a group as one request and gives each receiver its own result', async () => {
    const { createServer } = await import('node:http');
    let form: URLSearchParams | undefined;
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(202, { 'content-type': 'application/json' });
        // Answered out of order, with one receiver refused: results are matched by number.
        res.end(
          JSON.stringify({
            messages: [
              { status: 0, receiver: '14155550102', msgid: 'CPASS_2' },
              { status: 5, receiver: '14155550101', err_msg: 'Destination number black-listed' },
              { status: 0, receiver: '14155550100', msgid: 'CPASS_0' },
            ],
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const provider = new MoceanProvider({ apiUrl: `http://127.0.0.1:${port}`, apiKey: 'k', apiSecret: 's', connections: 1, timeoutMs: 1000, maxRecipients: 5 });
    try {
      expect(provider.maxRecipients).toBe(5);
      const results = await provider.sendGroup({
        from: 'Shop',
        text: 'Sale, 20% off',
        encoding: 'GSM7',
        dlrUrl: 'http://x/dlr?secret=a&mids=14155550100.m-0,14155550101.m-1',
        recipients: [
          { messageId: 'm-0', to: '+14155550100' },
          { messageId: 'm-1', to: '+14155550101' },
          { messageId: 'm-bad', to: '(415) 555' },
          { messageId: 'm-2', to: '+14155550102' },
        ],
      });
      expect(requests).toBe(1);
      expect(form!.get('mocean-to')).toBe('14155550100,14155550101,14155550102');
      expect(form!.get('textloop-ref')).toBe('m-0,m-1,m-2');
      expect(form!.get('mocean-dlr-url')).toBe('http://x/dlr?secret=a&mids=14155550100.m-0,14155550101.m-1');
      expect(results).toEqual([
        { ok: true, providerMessageId: 'CPASS_0' },
        { ok: false, transient: false, code: 'MOCEAN_5', message: 'Mocean status 5: Destination number black-listed' },
        { ok: false, transient: false, code: 'INVALID_NUMBER', message: expect.stringMatching(/not a phone number/) },
        { ok: true, providerMessageId: 'CPASS_2' },
      ]);
    } finally {
      await provider.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('fails every receiver of a group transiently when the provider cannot be reached, and one left out of the reply alone', async () => {
    const down = new MoceanProvider({ apiUrl: 'http://127.0.0.1:1', apiKey: 'k', apiSecret: 's', connections: 1, timeoutMs: 500, maxRecipients: 5 });
    const group = {
      from: 'T',
      text: 'x',
      encoding: 'GSM7' as const,
      dlrUrl: 'http://x',
      recipients: [
        { messageId: 'a', to: '+14155550100' },
        { messageId: 'b', to: '+14155550101' },
      ],
    };
    const results = await down.sendGroup(group);
    expect(results).toHaveLength(2);
    for (const r of results) expect(r).toMatchObject({ ok: false, transient: true });
    await down.close();
    // A reply that names only one of two receivers: the other is retried (its reference makes that safe).
    expect(interpretMoceanReply(202, { messages: [{ status: 0, receiver: '14155550100', msgid: 'M' }] }, '14155550101', 1)).toMatchObject({
      ok: false,
      transient: true,
      code: 'BAD_RESPONSE',
    });
  });

  it('calls an unreachable provider a transient failure', async () => {
    const provider = new MoceanProvider({ apiUrl: 'http://127.0.0.1:1', apiKey: 'k', apiSecret: 's', connections: 1, timeoutMs: 500 });
    const result = await provider.send({ messageId: 'm', from: 'T', to: '+14155550100', text: 'x', encoding: 'GSM7', dlrUrl: 'http://x' });
    expect(result).toMatchObject({ ok: false, transient: true });
    await provider.close();
  });
});

describe('grouping sends', () => {
  const row = (id: string, to: string, body = 'Sale', from = 'Shop'): Claimed => ({
    id,
    to_number: to,
    from_number: from,
    body,
    encoding: 'GSM7',
    attempts: 1,
  });

  it('takes the first row and later ones with its sender and text for other numbers, keeping the rest in order', () => {
    const ready = [
      row('1', '+1'),
      row('2', '+2', 'Other text'),
      row('3', '+3'),
      row('4', '+1'), // the first's number again: not in the same request
      row('5', '+5', 'Sale', 'Other sender'),
      row('6', '+6'),
      row('7', '+7'),
    ];
    expect(takeGroup(ready, 3).map((r) => r.id)).toEqual(['1', '3', '6']);
    expect(ready.map((r) => r.id)).toEqual(['2', '4', '5', '7']);
    expect(takeGroup(ready, 3).map((r) => r.id)).toEqual(['2']);
    expect(takeGroup(ready, 3).map((r) => r.id)).toEqual(['4', '7']);
    expect(takeGroup(ready, 3).map((r) => r.id)).toEqual(['5']);
    expect(ready).toEqual([]);
  });

  it('sends one row per request when the provider takes one receiver', () => {
    const ready = [row('1', '+1'), row('2', '+2')];
    expect(takeGroup(ready, 1).map((r) => r.id)).toEqual(['1']);
    expect(ready.map((r) => r.id)).toEqual(['2']);
  });

  it('names each receiver’s message in the callback URL, found again by the report’s mocean-to', () => {
    const one = new URLSearchParams(callbackQuery([{ messageId: 'm-1', to: '+14155550100' }]));
    expect(one.get('mid')).toBe('m-1');
    expect(callbackMessageId(one, '14155550100')).toBe('m-1');
    const many = new URLSearchParams(
      callbackQuery([
        { messageId: 'm-1', to: '+14155550100' },
        { messageId: 'm-2', to: '+447700900123' },
      ]),
    );
    expect(many.get('mid')).toBeNull();
    expect(callbackMessageId(many, '447700900123')).toBe('m-2');
    expect(callbackMessageId(many, '+14155550100')).toBe('m-1');
    expect(callbackMessageId(many, '14155550199')).toBeNull();
    expect(callbackMessageId(many, null)).toBeNull();
    expect(callbackMessageId(new URLSearchParams('mids=garbage,,.x'), '1')).toBeNull();
  });
});

describe('delivery reports and inbound parsing', () => {
  const at = new Date('2026-11-27T10:00:00Z');
  it('maps dlr-status 1/2/3', () => {
    const form = new URLSearchParams({ 'mocean-msgid': 'M1', 'mocean-dlr-status': '2', 'mocean-error-code': '34' });
    expect(parseDeliveryReport(form, 'mid-1', at)).toEqual({ messageId: 'mid-1', providerMessageId: 'M1', status: 'UNDELIVERED', carrierCode: '34', at });
    expect(parseDeliveryReport(new URLSearchParams({ 'mocean-msgid': 'M1', 'mocean-dlr-status': '9' }), null, at)).toMatch(/dlr-status/);
    expect(parseDeliveryReport(new URLSearchParams({ 'mocean-dlr-status': '1' }), null, at)).toMatch(/msgid/);
  });
  it('reads an inbound message', () => {
    expect(
      parseInbound(new URLSearchParams({ 'mocean-from': '14155550100', 'mocean-to': 'Textloop', 'mocean-text': 'Hi', 'mocean-time': '2026-11-27 10:00:00' })),
    ).toEqual({
      from: '+14155550100',
      to: 'Textloop',
      text: 'Hi',
      providerTime: '2026-11-27 10:00:00',
    });
    expect(parseInbound(new URLSearchParams({ 'mocean-from': 'abc', 'mocean-to': 'x', 'mocean-text': 'Hi' }))).toMatch(/mocean-from/);
  });
});

describe('rules', () => {
  it('moves statuses only forward', () => {
    expect(advances('SENDING', 'SENT')).toBe(true);
    expect(advances('DELIVERED', 'SENT')).toBe(false);
    expect(advances('DELIVERED', 'UNDELIVERED')).toBe(false);
    expect(advances('SENT', 'DELIVERED')).toBe(true);
    expect(advances('SUPPRESSED', 'DELIVERED')).toBe(false);
  });
  it('backs off exponentially with a cap', () => {
    expect([1, 2, 3, 4, 10].map((n) => retryDelayMs(n, 1000, 300_000))).toEqual([1000, 2000, 4000, 8000, 300_000]);
  });
  it('reads SMS_SENDERS', () => {
    expect(parseSenders('US:+15005550006, gb:Textloop')).toEqual({ US: '+15005550006', GB: 'Textloop' });
    expect(() => parseSenders('Textloop')).toThrow(/SMS_SENDERS/);
  });
  it('group-commits what arrives together', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        await new Promise((r) => setTimeout(r, 5));
        return items.map((i) => i * 2);
      },
      { maxBatch: 3, maxDelayMs: 5 },
    );
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => gc.push(i)));
    expect(results).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });
  it('keeps up to `concurrency` batches in flight and never more', async () => {
    let inFlight = 0;
    let most = 0;
    const release: Array<() => void> = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise<void>((r) => release.push(r));
        inFlight--;
        return items;
      },
      { maxBatch: 2, maxDelayMs: 1, concurrency: 2 },
    );
    const all = Promise.all([1, 2, 3, 4, 5, 6].map((i) => gc.push(i)));
    await new Promise((r) => setTimeout(r, 20));
    // Two full batches started at once; the third waits for a free slot.
    expect(inFlight).toBe(2);
    while (release.length > 0 || inFlight > 0) {
      release.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await all).toEqual([1, 2, 3, 4, 5, 6]);
    expect(most).toBe(2);
    await gc.drain();
  });
});
