import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs; quiet by default (start-up lines and problems only). */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name } });
}

export const silentLogger: Logger = pino({ level: 'silent' });
