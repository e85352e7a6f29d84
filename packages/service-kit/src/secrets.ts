import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A secret from the environment, else one generated once per DATA_DIR and kept there, so every
 * process started against the same folder agrees on it (webhook secret, gateway→subgraph token).
 */
export function loadSecret(dir: string, name: string, fromEnv: string | undefined): string {
  if (fromEnv) return fromEnv;
  const folder = join(dir, 'secrets');
  const file = join(folder, name);
  mkdirSync(folder, { recursive: true });
  try {
    writeFileSync(file, randomBytes(24).toString('base64url'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readFileSync(file, 'utf8').trim();
}

export const INTERNAL_TOKEN_HEADER = 'x-textloop-internal-token';
export const ROLE_HEADER = 'x-textloop-role';
export const KEY_NAME_HEADER = 'x-textloop-key';
