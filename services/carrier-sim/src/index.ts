import { pino } from 'pino';
import { createCarrierSim } from './server';

const env = process.env;
const logger = pino({ level: env.LOG_LEVEL || 'info', name: 'carrier-sim' });

function portFrom(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    logger.fatal({ [name]: value }, `${name} must be a port number`);
    process.exit(1);
  }
  return port;
}

function defaultInboundUrl(): string {
  if (env.CARRIER_SIM_INBOUND_URL) return env.CARRIER_SIM_INBOUND_URL;
  const base = (env.PUBLIC_WEBHOOK_URL || `http://127.0.0.1:${env.MESSAGING_PORT || 4002}`).replace(/\/+$/, '');
  const url = `${base}/webhooks/mocean/inbound`;
  return env.WEBHOOK_SECRET ? `${url}?secret=${encodeURIComponent(env.WEBHOOK_SECRET)}` : url;
}

const port = portFrom(env.CARRIER_SIM_PORT, 4010, 'CARRIER_SIM_PORT');
const host = env.CARRIER_SIM_HOST || env.HOST || '127.0.0.1';

const sim = createCarrierSim({
  apiKey: env.MOCEAN_API_KEY || 'textloop-sim',
  apiSecret: env.MOCEAN_API_SECRET || 'textloop-sim-secret',
  inboundUrl: defaultInboundUrl(),
  logger,
});

try {
  const { url } = await sim.listen(port, host);
  // The secret is left out of the log on purpose.
  logger.info({ url, inbound: defaultInboundUrl().replace(/\?.*$/, '') }, 'carrier simulator ready');
} catch (err) {
  logger.fatal({ err }, 'carrier simulator could not start');
  process.exit(1);
}

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    // A second Ctrl-C means "now".
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal }, 'carrier simulator stopping');
  const force = setTimeout(() => process.exit(1), 5_000);
  force.unref();
  try {
    await sim.close();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'carrier simulator did not close cleanly');
    process.exit(1);
  }
}

process.on('SIGINT', (s) => void stop(s));
process.on('SIGTERM', (s) => void stop(s));
