import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type Dialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Logger } from 'pino';

// Postgres returns BIGINT (count(*)) as a string by default; our counts fit comfortably in a JS number.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => v); // NUMERIC stays a decimal string (money)

export type DatabaseTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dir: string };

export interface OpenedDatabase<DB> {
  db: Kysely<DB>;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

/** Creates the database on the server when it is missing (one database per service). */
export async function ensurePostgresDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) return;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`create database "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently by another instance
      });
    }
  } finally {
    await client.end();
  }
}

export async function openDatabase<DB>(target: DatabaseTarget, options: { logger?: Logger; poolSize?: number } = {}): Promise<OpenedDatabase<DB>> {
  let dialect: Dialect;
  let closeExtra = async () => {};
  if (target.kind === 'postgres') {
    await ensurePostgresDatabase(target.url);
    const pool = new pg.Pool({ connectionString: target.url, max: options.poolSize ?? 10 });
    pool.on('error', (err) => options.logger?.warn({ err: err.message }, 'idle database connection failed'));
    dialect = new PostgresDialect({ pool });
  } else {
    mkdirSync(target.dir, { recursive: true });
    // Same value shapes as the pg driver above: counts as numbers, money as decimal strings.
    const pglite = await PGlite.create(target.dir, { parsers: { 20: (v: string) => Number(v), 1700: (v: string) => v } });
    dialect = new PGliteDialect(pglite);
    closeExtra = async () => {
      if (!pglite.closed) await pglite.close();
    };
  }
  const db = new Kysely<DB>({ dialect });
  return {
    db,
    kind: target.kind,
    async close() {
      await db.destroy();
      await closeExtra();
    },
  };
}
