import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeServices } from '@apollo/composition';
import { buildASTSchema, GraphQLError, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { DEFAULT_PORTS, type ServiceName } from '@textloop/service-kit';

/** The subgraphs of the supergraph, in composition order. */
export const SUBGRAPH_NAMES: readonly ServiceName[] = ['contacts', 'messaging', 'scheduling', 'feedback'];

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SUPERGRAPH_FILE = 'supergraph.graphql';

const HEADER = '# Composed by `pnpm compose` from services/*/src/schema.graphql; do not edit by hand.\n';

export interface SubgraphSource {
  name: ServiceName;
  /** Where the gateway reaches it by default; the gateway overrides it from the environment. */
  url: string;
  /** Repository-relative path of its schema.graphql. */
  file: string;
  sdl: string;
}

/** The schema.graphql of every subgraph that has one, and the names of those that do not (yet). */
export function readSubgraphSources(root = REPO_ROOT): { sources: SubgraphSource[]; missing: ServiceName[] } {
  const sources: SubgraphSource[] = [];
  const missing: ServiceName[] = [];
  for (const name of SUBGRAPH_NAMES) {
    const path = join(root, 'services', name, 'src', 'schema.graphql');
    if (!existsSync(path)) {
      missing.push(name);
      continue;
    }
    sources.push({ name, url: `http://127.0.0.1:${DEFAULT_PORTS[name]}/graphql`, file: relative(root, path), sdl: readFileSync(path, 'utf8') });
  }
  return { sources, missing };
}

export type Composition = { ok: true; supergraphSdl: string; apiSchema: GraphQLSchema; hints: string[] } | { ok: false; errors: string[] };

/** Composes the subgraphs with Apollo Federation 2; errors are one readable line (or paragraph) each. */
export function composeSupergraph(sources: SubgraphSource[]): Composition {
  const errors: string[] = [];
  const services: Array<{ name: string; url: string; typeDefs: DocumentNode }> = [];
  for (const source of sources) {
    try {
      services.push({ name: source.name, url: source.url, typeDefs: parse(source.sdl) });
    } catch (err) {
      const location = err instanceof GraphQLError && err.locations?.[0] ? `:${err.locations[0].line}:${err.locations[0].column}` : '';
      errors.push(`${source.file}${location}: ${(err as Error).message}`);
    }
  }
  if (errors.length) return { ok: false, errors };
  if (services.length === 0) return { ok: false, errors: ['no subgraph has a schema.graphql yet'] };
  const result = composeServices(services);
  if (result.errors) {
    return { ok: false, errors: result.errors.map((e) => (e.extensions?.code ? `[${String(e.extensions.code)}] ${e.message}` : e.message)) };
  }
  return {
    ok: true,
    supergraphSdl: `${HEADER}${result.supergraphSdl.trimEnd()}\n`,
    // Rebuilt from the AST so the schema belongs to the caller's graphql module (CJS/ESM instances differ).
    apiSchema: buildASTSchema(result.schema.toAPISchema().toAST()),
    hints: result.hints.map((h) => h.toString()),
  };
}
