import { describe, expect, it } from 'vitest';
import { ConfigError } from '@textloop/service-kit';
import { readInbound } from './inbound';
import { DEFAULT_KEYWORDS, loadKeywordConfig, matchKeyword, parseKeywordLists } from './keywords';

describe('matchKeyword', () => {
  const cases: Array<[string, string | undefined]> = [
    ['STOP', 'STOP'],
    ['stop', 'STOP'],
    [' Stop! ', 'STOP'],
    ['STOP.', 'STOP'],
    ['\n\tsToP?!\n', 'STOP'],
    ['"stop"', 'STOP'],
    ['stop 🛑', 'STOP'],
    ['ＳＴＯＰ', 'STOP'],
    ['StopAll', 'STOP'],
    ['unsubscribe', 'STOP'],
    ['Cancel', 'STOP'],
    ['end', 'STOP'],
    ['QUIT', 'STOP'],
    ['revoke', 'STOP'],
    ['optout', 'STOP'],
    ['start', 'START'],
    ['Unstop', 'START'],
    ['yes!', 'START'],
    ['help', 'HELP'],
    ['Info?', 'HELP'],
    ['stop sending me deals', undefined],
    ['please stop', undefined],
    ['STOP STOP', undefined],
    ['stopp', undefined],
    ['opt out', undefined],
    ['s.t.o.p', undefined],
    ['', undefined],
    ['   ', undefined],
    ['!!!', undefined],
    ['9', undefined],
    ['Yes please', undefined],
  ];
  it.each(cases)('%j → %s', (text, expected) => {
    expect(matchKeyword(text, DEFAULT_KEYWORDS)).toBe(expected);
  });

  it('uses the lists it is given', () => {
    const lists = parseKeywordLists({ KEYWORDS_STOP: 'arret, Opt Out', KEYWORDS_START: 'go', KEYWORDS_HELP: '' });
    expect(lists.STOP).toEqual(['ARRET', 'OPT OUT']);
    expect(matchKeyword('Arrêt'.normalize('NFD').replace(/\p{M}/gu, ''), lists)).toBe('STOP');
    expect(matchKeyword('opt   out.', lists)).toBe('STOP');
    expect(matchKeyword('stop', lists)).toBeUndefined();
    expect(matchKeyword('GO', lists)).toBe('START');
    // A blank list keeps the defaults.
    expect(matchKeyword('info', lists)).toBe('HELP');
  });
});

describe('keyword configuration', () => {
  it('has the compliance defaults', () => {
    const config = loadKeywordConfig({});
    expect(config.replies.STOP).toBe('You are unsubscribed from Textloop and will receive no more messages. Reply START to resubscribe.');
    expect(config.replies.HELP).toContain('Textloop');
    expect(config.replies.HELP).toContain('support@example.com');
    expect(config.replies.HELP).toContain('Reply STOP to unsubscribe.');
    expect(config.replies.START).toContain('Textloop');
    expect(config.lists.STOP).toEqual(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT']);
  });

  it('fills {{ program }} and {{ contact }} into configured replies', () => {
    const config = loadKeywordConfig({
      PROGRAM_NAME: 'Acme Rewards',
      SUPPORT_CONTACT: '+1 415 555 0100',
      REPLY_HELP: '{{program}} help: call {{ contact }}. Reply STOP to opt out.',
      REPLY_STOP: 'Bye from {{ program }}.',
    });
    expect(config.replies.HELP).toBe('Acme Rewards help: call +1 415 555 0100. Reply STOP to opt out.');
    expect(config.replies.STOP).toBe('Bye from Acme Rewards.');
  });

  it('refuses unknown placeholders, overlapping lists and over-long replies, naming the variable', () => {
    expect(() => loadKeywordConfig({ REPLY_STOP: 'Bye {{ name }}' })).toThrow(ConfigError);
    expect(() => loadKeywordConfig({ REPLY_STOP: 'Bye {{ name }}' })).toThrow(/REPLY_STOP.*\{\{ name \}\}/);
    expect(() => loadKeywordConfig({ KEYWORDS_START: 'START,STOP' })).toThrow(/KEYWORDS_STOP and KEYWORDS_START/);
    expect(() => loadKeywordConfig({ REPLY_HELP: 'x'.repeat(1601) })).toThrow(/REPLY_HELP.*1601/);
    expect(() => loadKeywordConfig({ KEYWORDS_HELP: ' , ,' })).toThrow(/KEYWORDS_HELP/);
  });
});

describe('readInbound', () => {
  const form = (fields: Record<string, string>) => new URLSearchParams(fields);
  const ok = { 'mocean-from': '14155550100', 'mocean-to': 'Textloop', 'mocean-text': 'Hi', 'mocean-time': '2026-11-27 10:00:00' };

  it('reads a well-formed report', () => {
    expect(readInbound(form(ok))).toEqual({ from: '+14155550100', to: 'Textloop', text: 'Hi', providerTime: '2026-11-27 10:00:00' });
    expect(readInbound(form({ ...ok, 'mocean-to': '15005550006' }))).toMatchObject({ to: '+15005550006' });
    expect(readInbound(form({ ...ok, 'mocean-text': 'é'.repeat(1600) }))).toMatchObject({ text: 'é'.repeat(1600) });
  });

  it('refuses what is missing or malformed with 400, and text over 1,600 characters with 413', () => {
    const { 'mocean-from': _from, ...noFrom } = ok;
    const { 'mocean-to': _to, ...noTo } = ok;
    const { 'mocean-text': _text, ...noText } = ok;
    const cases: Array<[Record<string, string>, number, RegExp]> = [
      [noFrom, 400, /mocean-from is missing/],
      [{ ...ok, 'mocean-from': 'JohnDoe' }, 400, /mocean-from/],
      [{ ...ok, 'mocean-from': '+1 415 555 0100' }, 400, /mocean-from/],
      [{ ...ok, 'mocean-from': '123' }, 400, /mocean-from/],
      [noTo, 400, /mocean-to/],
      [{ ...ok, 'mocean-to': 'not a valid sender id' }, 400, /mocean-to/],
      [noText, 400, /mocean-text is missing/],
      [{ ...ok, 'mocean-text': '' }, 400, /empty/],
      [{ ...ok, 'mocean-text': ' \n ' }, 400, /empty/],
      [{ ...ok, 'mocean-text': 'x'.repeat(1601) }, 413, /1601 characters/],
      // Characters, not UTF-16 units: 1,601 emoji are too long, 1,600 are not.
      [{ ...ok, 'mocean-text': '😀'.repeat(1601) }, 413, /1601/],
    ];
    for (const [fields, status, message] of cases) {
      const read = readInbound(form(fields));
      expect(read, JSON.stringify(fields).slice(0, 80)).toMatchObject({ status });
      expect((read as { error: string }).error).toMatch(message);
    }
    expect(readInbound(form({ ...ok, 'mocean-text': '😀'.repeat(1600) }))).toMatchObject({ from: '+14155550100' });
  });
});
