// pnpm start — runs the whole platform in the foreground until Ctrl-C.
import { relative } from 'node:path';
import { formatLogLine, PlatformStartError, startPlatform, type Platform } from './platform';

const LABEL_WIDTH = 13;

/** A path as people would type it from here: relative below the working directory, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
}

function lastLines(name: string, lines: string[]): string {
  return lines.map((line) => `  ${formatLogLine(name, line, false)}`).join('\n');
}

function box(title: string, rows: Array<[string, string]>, footer: string): string {
  const width = Math.max(title.length + 2, footer.length, ...rows.map(([, v]) => LABEL_WIDTH + v.length));
  const line = (text: string) => `│ ${text.padEnd(width)} │`;
  return [
    `┌─ ${title} ${'─'.repeat(width - title.length - 1)}┐`,
    ...rows.map(([k, v]) => line(`${k.padEnd(LABEL_WIDTH)}${v}`)),
    `├${'─'.repeat(width + 2)}┤`,
    line(footer),
    `└${'─'.repeat(width + 2)}┘`,
  ].join('\n');
}

function summary(p: Platform): string {
  const rows: Array<[string, string]> = [
    ['GraphQL', p.urls.graphql],
    ['Sandbox', `${p.urls.sandbox}  (open in a browser)`],
    [
      'API key',
      p.devApiKey ? `${p.devApiKey}  (Authorization: Bearer ${p.devApiKey}; set API_KEYS for real keys)` : 'from API_KEYS  (Authorization: Bearer <key>)',
    ],
    ['Carrier sim', `${p.urls.carrierSim}  (virtual handsets)`],
    ['Webhooks', `${p.urls.webhooks.inbound}?secret=…`],
    ['', `${p.urls.webhooks.deliveryReports}?secret=…`],
    ['', `(the secret is WEBHOOK_SECRET or ${shown(p.dataDir)}/secrets/webhook-secret)`],
    ...Object.entries(p.urls.subgraphs).map(([name, url], i): [string, string] => [i === 0 ? 'Subgraphs' : '', `${name.padEnd(11)}${url}`]),
    ['', '(they answer only the gateway)'],
    ['NATS', `${p.urls.nats}${p.startedNats ? `  (started here, store ${shown(p.dataDir)}/nats)` : ''}`],
    ['Data', process.env.DATABASE_URL ? 'PostgreSQL at DATABASE_URL' : `${shown(p.dataDir)}/<service> (embedded PGlite)`],
  ];
  return box('Textloop is running', rows, 'Ctrl-C stops everything.');
}

let platform: Platform;
try {
  platform = await startPlatform();
} catch (err) {
  console.error(`\nTextloop did not start: ${(err as Error).message}`);
  if (err instanceof PlatformStartError && err.lastLines.length) console.error(`\n${lastLines(err.processName ?? '', err.lastLines)}\n`);
  process.exit(1);
}

console.log(`\n${summary(platform)}\n`);

let stopping = false;
const shutdown = async (why: string, code: number) => {
  if (stopping) {
    console.log('Stopping now.');
    process.exit(1);
  }
  stopping = true;
  console.log(`\n${why}; stopping Textloop (Ctrl-C again to force)…`);
  await platform.stop();
  console.log('Textloop stopped.');
  process.exit(code);
};
process.on('SIGINT', () => void shutdown('SIGINT', 0));
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGHUP', () => void shutdown('SIGHUP', 0));
void platform.unexpectedExit.then((exit) => {
  console.error(
    `\n${exit.name} exited unexpectedly (${exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`}); its last lines:\n${lastLines(exit.name, exit.lastLines)}`,
  );
  return shutdown(`${exit.name} is gone`, 1);
});
