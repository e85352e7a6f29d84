import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger, dataDir, loadSecret, natsUrl, portOf } from '@textloop/service-kit';
import { loadApiKeys } from './auth';
import { SUBGRAPH_NAMES } from './compose';
import { createGateway } from './server';

const env = process.env;
const logger = createLogger('gateway');

/** <NAME>_URL when set (e.g. in containers), else the subgraph's port on this host. */
function subgraphUrls(): Record<string, string> {
  return Object.fromEntries(SUBGRAPH_NAMES.map((name) => [name, env[`${name.toUpperCase()}_URL`] || `http://127.0.0.1:${portOf(name, env)}/graphql`]));
}

try {
  const keys = loadApiKeys(env);
  const supergraphPath = env.SUPERGRAPH_PATH || fileURLToPath(new URL('../../../supergraph.graphql', import.meta.url));
  if (!existsSync(supergraphPath)) throw new Error(`no supergraph at ${supergraphPath}; run \`pnpm compose\` to write it`);
  const urls = subgraphUrls();
  const gateway = createGateway({
    supergraphSdl: readFileSync(supergraphPath, 'utf8'),
    subgraphUrls: urls,
    internalToken: loadSecret(dataDir(env), 'internal-token', env.INTERNAL_TOKEN),
    keys,
    logger,
    natsUrl: natsUrl(env),
  });
  const { url } = await gateway.http.listen(portOf('gateway', env), env.HOST ?? '127.0.0.1');
  await gateway.start();
  if (keys.devKey) {
    logger.warn(`API_KEYS is not set: the development key "${keys.devKey}" (role admin) is accepted; set API_KEYS="admin:<key>,app:<key>" for real keys`);
  }
  logger.info({ url: `${url}/graphql`, subgraphs: urls }, 'gateway ready');
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await gateway.http.close();
    await gateway.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  logger.fatal({ err: (err as Error).message }, 'gateway could not start');
  process.exit(1);
}
