import { createRequire } from 'node:module';

/**
 * The CommonJS instance of graphql-js: the one @apollo/gateway builds its API schema with and the
 * one graphql-ws checks its errors against. Under Node (tsx) `import 'graphql'` loads that same
 * instance, but vitest loads the ESM build (index.mjs), a second copy whose schemas and errors the
 * other copy rejects ("from another module or realm"). Code that hands graphql objects to those
 * libraries, or takes them from them, uses this one so it behaves the same in both.
 */
export const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
