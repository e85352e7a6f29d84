import { ConfigError } from '@textloop/service-kit';

/**
 * Compliance keywords (architecture.md, "Compliance defaults"): pure parts — the lists, matching a
 * message against them, and the reply texts. What a match does is in keyword-step.ts.
 */
export type Keyword = 'STOP' | 'START' | 'HELP';
export const KEYWORDS: readonly Keyword[] = ['STOP', 'START', 'HELP'];

/** Normalized words (see normalizeKeywordText) per keyword. */
export type KeywordLists = Record<Keyword, readonly string[]>;

export const DEFAULT_KEYWORDS: Readonly<Record<Keyword, readonly string[]>> = {
  STOP: ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT'],
  START: ['START', 'UNSTOP', 'YES'],
  HELP: ['HELP', 'INFO'],
};

export const DEFAULT_REPLIES: Readonly<Record<Keyword, string>> = {
  STOP: 'You are unsubscribed from {{ program }} and will receive no more messages. Reply START to resubscribe.',
  START: 'You are resubscribed to {{ program }} messages. Reply HELP for help, STOP to unsubscribe.',
  HELP: '{{ program }}: for help, contact {{ contact }}. Reply STOP to unsubscribe.',
};

export const DEFAULT_PROGRAM_NAME = 'Textloop';
export const DEFAULT_SUPPORT_CONTACT = 'support@example.com';

/** Replies are single SMS-sized texts; this is sendMessage's limit too. */
const MAX_REPLY_CHARS = 1600;

/** Whitespace, punctuation and symbols (emoji included) around a keyword do not count. */
const EDGES = /^[\s\p{P}\p{S}]+|[\s\p{P}\p{S}]+$/gu;

/**
 * What is compared: Unicode-compatibility-normalized (full-width letters become ASCII), without
 * surrounding whitespace/punctuation/symbols, inner whitespace collapsed, upper case.
 */
export function normalizeKeywordText(text: string): string {
  return text.normalize('NFKC').replace(EDGES, '').replace(/\s+/g, ' ').toUpperCase();
}

/**
 * The keyword the WHOLE message is, or undefined: "stop", " Stop! ", "STOP." match STOP; "stop
 * sending me deals" matches nothing. Lists are normalized words (parseKeywordLists); STOP is
 * checked first, then START, then HELP.
 */
export function matchKeyword(text: string, lists: KeywordLists = DEFAULT_KEYWORDS): Keyword | undefined {
  const word = normalizeKeywordText(text);
  if (!word) return undefined;
  return KEYWORDS.find((k) => lists[k].includes(word));
}

const ENV_LIST: Record<Keyword, string> = { STOP: 'KEYWORDS_STOP', START: 'KEYWORDS_START', HELP: 'KEYWORDS_HELP' };
const ENV_REPLY: Record<Keyword, string> = { STOP: 'REPLY_STOP', START: 'REPLY_START', HELP: 'REPLY_HELP' };

/**
 * KEYWORDS_STOP / KEYWORDS_START / KEYWORDS_HELP: comma-separated words that replace the defaults
 * (unset or blank: the defaults). A word may not be in two lists.
 */
export function parseKeywordLists(env: NodeJS.ProcessEnv): KeywordLists {
  const out = {} as Record<Keyword, string[]>;
  const owner = new Map<string, Keyword>();
  for (const k of KEYWORDS) {
    const raw = env[ENV_LIST[k]];
    const words = raw?.trim() ? raw.split(',').map(normalizeKeywordText).filter(Boolean) : [...DEFAULT_KEYWORDS[k]];
    if (words.length === 0) throw new ConfigError(`${ENV_LIST[k]} must list at least one word, e.g. "${DEFAULT_KEYWORDS[k].join(',')}"; got "${raw}"`);
    for (const w of words) {
      const other = owner.get(w);
      if (other && other !== k) throw new ConfigError(`"${w}" is in both ${ENV_LIST[other]} and ${ENV_LIST[k]}; a keyword can mean only one thing`);
      owner.set(w, k);
    }
    out[k] = [...new Set(words)];
  }
  return out;
}

/** Fills {{ program }} and {{ contact }}; any other {{ … }} is a mistake in the configured text. */
export function renderReply(template: string, values: { program: string; contact: string }, name = 'reply'): string {
  return template.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, key: string) => {
    if (key === 'program') return values.program;
    if (key === 'contact') return values.contact;
    throw new ConfigError(`${name} uses {{ ${key} }}; only {{ program }} (PROGRAM_NAME) and {{ contact }} (SUPPORT_CONTACT) can be filled in`);
  });
}

export interface KeywordConfig {
  lists: KeywordLists;
  /** Reply texts with the placeholders filled in. */
  replies: Record<Keyword, string>;
  programName: string;
  supportContact: string;
}

/** Keyword lists and replies from the environment (REPLY_* unset or blank: the defaults). */
export function loadKeywordConfig(env: NodeJS.ProcessEnv): KeywordConfig {
  const programName = env.PROGRAM_NAME?.trim() || DEFAULT_PROGRAM_NAME;
  const supportContact = env.SUPPORT_CONTACT?.trim() || DEFAULT_SUPPORT_CONTACT;
  const replies = {} as Record<Keyword, string>;
  for (const k of KEYWORDS) {
    const name = ENV_REPLY[k];
    const text = renderReply(env[name]?.trim() || DEFAULT_REPLIES[k], { program: programName, contact: supportContact }, name).trim();
    if (!text) throw new ConfigError(`${name} is empty after filling in its placeholders; write the text to send`);
    const n = [...text].length;
    if (n > MAX_REPLY_CHARS) throw new ConfigError(`${name} is ${n} characters once filled in; an SMS reply may be at most ${MAX_REPLY_CHARS}`);
    replies[k] = text;
  }
  return { lists: parseKeywordLists(env), replies, programName, supportContact };
}
