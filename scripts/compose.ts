// pnpm compose — writes supergraph.graphql from services/*/src/schema.graphql.
// `--hints` also prints Apollo's composition hints (differing descriptions and the like).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, SUPERGRAPH_FILE, composeSupergraph, readSubgraphSources } from '../services/gateway/src/compose';

const { sources, missing } = readSubgraphSources();
for (const name of missing) console.warn(`compose: skipping ${name}: services/${name}/src/schema.graphql does not exist yet`);

const result = composeSupergraph(sources);
if (!result.ok) {
  console.error(
    `compose: the subgraphs do not compose (${result.errors.length} error${result.errors.length === 1 ? '' : 's'}); ${SUPERGRAPH_FILE} is unchanged:\n`,
  );
  for (const error of result.errors) console.error(`  - ${error.replace(/\n/g, '\n    ')}\n`);
  process.exit(1);
}

writeFileSync(join(REPO_ROOT, SUPERGRAPH_FILE), result.supergraphSdl);
const hints = result.hints.length ? `; ${result.hints.length} composition hint${result.hints.length === 1 ? '' : 's'}` : '';
console.log(
  `compose: wrote ${SUPERGRAPH_FILE} from ${sources.map((s) => s.name).join(', ')}${hints}${hints && !process.argv.includes('--hints') ? ' (pnpm compose --hints shows them)' : ''}`,
);
if (process.argv.includes('--hints')) for (const hint of result.hints) console.log(`  - ${hint}`);
