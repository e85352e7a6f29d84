import { describe, expect, it } from 'vitest';
import { parseScore } from './parse-score';

describe('parseScore', () => {
  const table: Array<[string, number | null]> = [
    // what the issue lists
    ['9', 9],
    [' 9 ', 9],
    ['9/10', 9],
    ['9 out of 10', 9],
    ['nine', 9],
    ['Ten!', 10],
    ["I'd say 8", 8],
    ['10!!!', 10],
    // the ends of the scale and other ways of writing it
    ['0', 0],
    ['10', 10],
    ['zero', 0],
    ['ZERO :(', 0],
    ['10/10', 10],
    ['10 / 10 would recommend', 10],
    ['9 of 10', 9],
    ['nine out of ten', 9],
    ['7 out of ten.', 7],
    ['I give it a 9.', 9],
    ['5 - it was ok', 5],
    ['(8)', 8],
    ['#9', 9],
    ['８', 8],
    ['\n6\n', 6],
    ['8, definitely 8', 8],
    ['eight... 8', 8],
    ['My score: 3', 3],
    ['one', 1],
    // no number
    ['maybe', null],
    ['', null],
    ['   ', null],
    ['Someone told me it was great', null],
    ['often', null],
    ['eighty', null],
    ['great service!', null],
    // several different numbers
    ['7 or 8', null],
    ['8-9', null],
    ['4/5', null],
    ['9/10, maybe 10', null],
    ['between six and seven', null],
    ['call me at 8:30', null],
    // outside 0-10, fractions
    ['11', null],
    ['eleven', null],
    ['nineteen', null],
    ['100', null],
    ['9/100', null],
    ['-1', null],
    ['8.5', null],
    ['8,5', null],
    ['a hundred', null],
  ];

  it.each(table)('%j → %j', (text, score) => {
    expect(parseScore(text)).toBe(score);
  });
});
