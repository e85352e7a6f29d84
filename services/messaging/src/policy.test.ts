import { describe, expect, it } from 'vitest';
import { GraphQLError } from 'graphql';
import { checkPolicyInput, frequencyCapMessage, inQuietHours, minutesOfDay, quietHoursDetail, quietHoursEnd, recipientTimezone } from './policy';

describe('inQuietHours and quietHoursEnd', () => {
  // [instant, zone, start, end, quiet?, end of the window (the instant itself when not quiet)]
  const table: Array<[string, string, string, string, boolean, string]> = [
    // America/New_York in winter (EST, -05:00): 23:00 local waits for 08:00 local.
    ['2026-11-28T04:00:00Z', 'America/New_York', '21:00', '08:00', true, '2026-11-28T13:00:00Z'],
    ['2026-11-28T01:59:00Z', 'America/New_York', '21:00', '08:00', false, '2026-11-28T01:59:00Z'], // 20:59
    ['2026-11-28T02:00:00Z', 'America/New_York', '21:00', '08:00', true, '2026-11-28T13:00:00Z'], // 21:00 sharp
    ['2026-11-28T12:59:59Z', 'America/New_York', '21:00', '08:00', true, '2026-11-28T13:00:00Z'], // 07:59:59
    ['2026-11-28T13:00:00Z', 'America/New_York', '21:00', '08:00', false, '2026-11-28T13:00:00Z'], // 08:00 sharp
    ['2026-11-28T05:30:00Z', 'America/New_York', '21:00', '08:00', true, '2026-11-28T13:00:00Z'], // 00:30, after midnight
    // Clocks go forward on 2026-03-08 at 02:00 EST → 03:00 EDT: the night is an hour shorter.
    ['2026-03-08T04:00:00Z', 'America/New_York', '21:00', '08:00', true, '2026-03-08T12:00:00Z'], // 23:00 EST → 08:00 EDT
    ['2026-03-08T01:59:00Z', 'America/New_York', '21:00', '08:00', false, '2026-03-08T01:59:00Z'],
    // A window ending inside the skipped hour ends at the jump.
    ['2026-03-08T06:00:00Z', 'America/New_York', '22:00', '02:30', true, '2026-03-08T07:00:00Z'],
    ['2026-03-08T07:00:00Z', 'America/New_York', '22:00', '02:30', false, '2026-03-08T07:00:00Z'], // 03:00 EDT
    // Clocks go back on 2026-11-01 at 02:00 EDT → 01:00 EST: the night is an hour longer.
    ['2026-11-01T02:00:00Z', 'America/New_York', '21:00', '08:00', true, '2026-11-01T13:00:00Z'], // 22:00 EDT → 08:00 EST
    ['2026-10-31T11:59:00Z', 'America/New_York', '21:00', '08:00', true, '2026-10-31T12:00:00Z'], // 07:59 EDT
    // A window ending in the repeated hour: 01:30 comes twice, and each 01:00–01:30 is quiet.
    ['2026-11-01T05:00:00Z', 'America/New_York', '21:00', '01:30', true, '2026-11-01T05:30:00Z'], // 01:00 EDT
    ['2026-11-01T05:45:00Z', 'America/New_York', '21:00', '01:30', false, '2026-11-01T05:45:00Z'], // 01:45 EDT
    ['2026-11-01T06:00:00Z', 'America/New_York', '21:00', '01:30', true, '2026-11-01T06:30:00Z'], // 01:00 EST
    // Asia/Kolkata: +05:30, no daylight saving.
    ['2026-11-27T16:00:00Z', 'Asia/Kolkata', '21:00', '08:00', true, '2026-11-28T02:30:00Z'], // 21:30
    ['2026-11-27T15:29:00Z', 'Asia/Kolkata', '21:00', '08:00', false, '2026-11-27T15:29:00Z'], // 20:59
    ['2026-11-28T02:29:00Z', 'Asia/Kolkata', '21:00', '08:00', true, '2026-11-28T02:30:00Z'], // 07:59
    // Pacific/Auckland: +13 in summer, +12 in winter; southern hemisphere, so it changes the other way round.
    ['2026-11-27T08:30:00Z', 'Pacific/Auckland', '21:00', '08:00', true, '2026-11-27T19:00:00Z'], // 21:30 NZDT
    ['2026-04-04T10:00:00Z', 'Pacific/Auckland', '21:00', '08:00', true, '2026-04-04T20:00:00Z'], // 23:00 NZDT → 08:00 NZST
    ['2026-09-26T10:00:00Z', 'Pacific/Auckland', '21:00', '08:00', true, '2026-09-26T19:00:00Z'], // 22:00 NZST → 08:00 NZDT
    ['2026-09-26T13:30:00Z', 'Pacific/Auckland', '01:00', '02:30', true, '2026-09-26T14:00:00Z'], // ends in the skipped hour
    // A window within one day, and one starting at midnight.
    ['2026-11-27T12:00:00Z', 'UTC', '09:00', '17:00', true, '2026-11-27T17:00:00Z'],
    ['2026-11-27T17:00:00Z', 'UTC', '09:00', '17:00', false, '2026-11-27T17:00:00Z'],
    ['2026-11-27T08:59:00Z', 'UTC', '09:00', '17:00', false, '2026-11-27T08:59:00Z'],
    ['2026-11-27T00:00:00Z', 'UTC', '00:00', '06:00', true, '2026-11-27T06:00:00Z'],
    ['2026-11-27T23:59:00Z', 'UTC', '00:00', '06:00', false, '2026-11-27T23:59:00Z'],
    // Equal start and end: no quiet hours at all.
    ['2026-11-28T04:00:00Z', 'America/New_York', '21:00', '21:00', false, '2026-11-28T04:00:00Z'],
    ['2026-11-28T04:00:00Z', 'America/New_York', '00:00', '00:00', false, '2026-11-28T04:00:00Z'],
  ];

  it.each(table)('%s in %s, quiet %s–%s: quiet=%s, ends %s', (at, tz, start, end, quiet, until) => {
    expect(inQuietHours(new Date(at), tz, start, end)).toBe(quiet);
    expect(quietHoursEnd(new Date(at), tz, start, end).toISOString()).toBe(new Date(until).toISOString());
  });

  it('ends strictly later and outside the window for every quarter hour of the DST days', () => {
    const zones = ['America/New_York', 'Pacific/Auckland', 'Asia/Kolkata', 'Europe/London'];
    const days = ['2026-03-07T12:00:00Z', '2026-10-31T12:00:00Z', '2026-04-04T00:00:00Z', '2026-09-26T00:00:00Z', '2026-03-28T12:00:00Z'];
    const windows: Array<[string, string]> = [
      ['21:00', '08:00'],
      ['01:00', '02:30'],
      ['00:30', '01:30'],
    ];
    for (const tz of zones) {
      for (const day of days) {
        for (let q = 0; q < 4 * 48; q++) {
          const at = new Date(Date.parse(day) + q * 15 * 60_000);
          for (const [start, end] of windows) {
            if (!inQuietHours(at, tz, start, end)) continue;
            const until = quietHoursEnd(at, tz, start, end);
            expect(until.getTime()).toBeGreaterThan(at.getTime());
            expect(inQuietHours(until, tz, start, end)).toBe(false);
            // …and the whole stretch before it is quiet (the first instant out, not a later one).
            expect(inQuietHours(new Date(until.getTime() - 1000), tz, start, end)).toBe(true);
          }
        }
      }
    }
  });
});

describe('recipientTimezone', () => {
  it.each([
    ['America/Chicago', '+14155550100', 'US', 'America/Chicago'], // the contact's own zone wins
    [null, '+14155550100', 'US', 'America/Los_Angeles'], // area code 415
    ['Not/AZone', '+919812345678', 'IN', 'Asia/Kolkata'], // unknown zone: the number's
    [null, '+6421555123', null, 'Pacific/Auckland'],
    [null, '[erased]', 'NZ', 'Pacific/Auckland'], // no number: the country's
    [null, '[erased]', null, 'UTC'],
  ])('contact zone %s, number %s, country %s → %s', (zone, phone, country, expected) => {
    expect(recipientTimezone(zone, phone, country)).toBe(expected);
  });
});

describe('policy input', () => {
  it('reads HH:MM from 00:00 to 23:59 only', () => {
    expect(minutesOfDay('00:00')).toBe(0);
    expect(minutesOfDay('23:59')).toBe(1439);
    expect(minutesOfDay('08:30')).toBe(510);
    for (const bad of ['24:00', '8:00', '08:60', '0800', '08:00:00', ' 08:00', '', 'noon']) expect(minutesOfDay(bad)).toBeUndefined();
  });

  it.each([
    [{ quietHoursStart: '25:00' }, 'quietHoursStart'],
    [{ quietHoursEnd: '7:00' }, 'quietHoursEnd'],
    [{ quietHoursStart: '22:00', quietHoursEnd: '24:00' }, 'quietHoursEnd'],
    [{ marketingWeeklyCap: -1 }, 'marketingWeeklyCap'],
    [{ marketingWeeklyCap: 1001 }, 'marketingWeeklyCap'],
    [{ marketingWeeklyCap: 2.5 }, 'marketingWeeklyCap'],
  ])('%j is BAD_USER_INPUT on %s', (input, field) => {
    try {
      checkPolicyInput(input);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GraphQLError);
      expect((err as GraphQLError).extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect((err as GraphQLError).message).toMatch(new RegExp(`^${field} must be`));
    }
  });

  it('keeps only the fields given', () => {
    expect(checkPolicyInput({})).toEqual({});
    expect(checkPolicyInput({ quietHoursStart: null, marketingWeeklyCap: 0 })).toEqual({ marketingWeeklyCap: 0 });
    expect(checkPolicyInput({ quietHoursStart: '22:00', quietHoursEnd: '07:30', marketingWeeklyCap: 1000 })).toEqual({
      quietHoursStart: '22:00',
      quietHoursEnd: '07:30',
      marketingWeeklyCap: 1000,
    });
  });

  it('explains what happened in words', () => {
    expect(
      quietHoursDetail({ quietHoursStart: '21:00', quietHoursEnd: '08:00', marketingWeeklyCap: 3 }, 'America/New_York', new Date('2026-11-28T13:00:00Z')),
    ).toBe('quiet hours 21:00–08:00 in America/New_York; sends at 2026-11-28T13:00:00.000Z');
    expect(frequencyCapMessage(3, 3, true)).toMatch(
      /This contact already has 3 MARKETING messages in the last 7 days; the weekly cap \(marketingWeeklyCap\) is 3/,
    );
    expect(frequencyCapMessage(0, 0, false)).toMatch(/cap \(marketingWeeklyCap\) is 0/);
  });
});
