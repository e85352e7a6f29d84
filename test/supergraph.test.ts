import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildASTSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  isUnionType,
  parse,
  type GraphQLArgument,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';
import { REPO_ROOT, SUPERGRAPH_FILE, composeSupergraph, readSubgraphSources } from '../services/gateway/src/compose';

const CONTRACT_PATH = join(REPO_ROOT, '..', 'shared', 'contract', 'api.graphql');

/**
 * The foundation issue delivers contacts and messaging: there a missing type or field fails the
 * build. Elsewhere a missing one is only listed as "not yet built" (later issues add it).
 */
const FOUNDATION_TYPES = new Set([
  'DateTime',
  'JSON',
  'PageInfo',
  'Money',
  'Contact',
  'ContactConnection',
  'ContactFilter',
  'CreateContactInput',
  'UpdateContactInput',
  'ImportContactsResult',
  'ImportFailure',
  'TrackEventInput',
  'TrackedEvent',
  'MessageDirection',
  'MessageCategory',
  'MessageStatus',
  'Encoding',
  'Message',
  'MessageStatusChange',
  'MessageConnection',
  'MessageFilter',
  'SendMessageInput',
  'MessagePreview',
  'PreviewMessageInput',
  'Template',
  'TemplateInput',
  'MessagingStats',
]);
/** Fields of foundation types that belong to later issues. */
const LATER_FIELDS = new Set(['Message.conversation']);
const FOUNDATION_ROOT_FIELDS = new Set([
  'Query.contact',
  'Query.contactByPhone',
  'Query.contactByExternalId',
  'Query.contacts',
  'Query.message',
  'Query.messages',
  'Query.previewMessage',
  'Query.templates',
  'Query.template',
  'Query.messagingStats',
  'Mutation.createContact',
  'Mutation.updateContact',
  'Mutation.deleteContact',
  'Mutation.importContacts',
  'Mutation.unsubscribeContact',
  'Mutation.resubscribeContact',
  'Mutation.trackEvent',
  'Mutation.runDormancySweep',
  'Mutation.sendMessage',
  'Mutation.createTemplate',
  'Mutation.updateTemplate',
]);

function fieldIsEnforced(typeName: string, fieldName: string): boolean {
  const coordinate = `${typeName}.${fieldName}`;
  if (typeName === 'Query' || typeName === 'Mutation') return FOUNDATION_ROOT_FIELDS.has(coordinate);
  return FOUNDATION_TYPES.has(typeName) && !LATER_FIELDS.has(coordinate);
}

/** Ours may promise more to a reader (non-null where the contract says nullable), never less. */
function outputCompatible(ours: GraphQLOutputType, want: GraphQLOutputType): boolean {
  if (isNonNullType(want)) return isNonNullType(ours) && outputCompatible(ours.ofType, want.ofType);
  if (isNonNullType(ours)) return outputCompatible(ours.ofType, want);
  if (isListType(want)) return isListType(ours) && outputCompatible(ours.ofType, want.ofType);
  return !isListType(ours) && (ours as GraphQLNamedType).name === (want as GraphQLNamedType).name;
}

/** Ours must accept every value the contract accepts: it may make a required input optional, never the reverse. */
function inputCompatible(ours: GraphQLInputType, want: GraphQLInputType): boolean {
  if (isNonNullType(ours)) return isNonNullType(want) && inputCompatible(ours.ofType, want.ofType);
  if (isNonNullType(want)) return inputCompatible(ours, want.ofType);
  if (isListType(want)) return isListType(ours) && inputCompatible(ours.ofType, want.ofType);
  return !isListType(ours) && (ours as GraphQLNamedType).name === (want as GraphQLNamedType).name;
}

function compareInputs(
  where: string,
  ours: readonly (GraphQLArgument | GraphQLInputField)[],
  want: readonly (GraphQLArgument | GraphQLInputField)[],
  problems: string[],
) {
  for (const w of want) {
    const o = ours.find((a) => a.name === w.name);
    if (!o) {
      problems.push(`${where}: ${w.name} is missing`);
      continue;
    }
    if (!inputCompatible(o.type, w.type)) problems.push(`${where}: ${w.name} is ${o.type}, contract says ${w.type}`);
    if (w.defaultValue !== undefined && JSON.stringify(o.defaultValue) !== JSON.stringify(w.defaultValue)) {
      problems.push(`${where}: ${w.name} defaults to ${JSON.stringify(o.defaultValue)}, contract says ${JSON.stringify(w.defaultValue)}`);
    }
  }
  for (const o of ours) {
    if (isNonNullType(o.type) && o.defaultValue === undefined && !want.some((w) => w.name === o.name)) {
      problems.push(`${where}: ${o.name} is required but the contract does not have it, so clients do not send it`);
    }
  }
}

function kindOf(type: GraphQLNamedType): string {
  if (isObjectType(type)) return 'an object type';
  if (isInterfaceType(type)) return 'an interface';
  if (isUnionType(type)) return 'a union';
  if (isEnumType(type)) return 'an enum';
  if (isInputObjectType(type)) return 'an input type';
  if (isScalarType(type)) return 'a scalar';
  return 'unknown';
}

/** Breaks (what fails the test) and what the contract has that is not built yet. */
export function checkAgainstContract(ours: GraphQLSchema, contract: GraphQLSchema): { problems: string[]; notYetBuilt: string[] } {
  const problems: string[] = [];
  const notYetBuilt: string[] = [];
  for (const want of Object.values(contract.getTypeMap())) {
    if (want.name.startsWith('__')) continue;
    const have = ours.getType(want.name);
    // Built-in scalars exist in a schema only where a field uses them.
    if (!have && isSpecifiedScalarType(want)) continue;
    if (!have) {
      (FOUNDATION_TYPES.has(want.name) ? problems : notYetBuilt).push(`type ${want.name} is missing`);
      continue;
    }
    if (kindOf(have) !== kindOf(want)) {
      problems.push(`${want.name} is ${kindOf(have)}, contract says ${kindOf(want)}`);
      continue;
    }
    if (isEnumType(want) && isEnumType(have)) {
      for (const v of want.getValues()) if (!have.getValue(v.name)) problems.push(`enum ${want.name} lacks ${v.name}`);
    }
    if (isInputObjectType(want) && isInputObjectType(have)) {
      compareInputs(`input ${want.name}`, Object.values(have.getFields()), Object.values(want.getFields()), problems);
    }
    if ((isObjectType(want) || isInterfaceType(want)) && (isObjectType(have) || isInterfaceType(have))) {
      const fields = have.getFields();
      for (const wf of Object.values(want.getFields())) {
        const hf = fields[wf.name];
        const coordinate = `${want.name}.${wf.name}`;
        if (!hf) {
          (fieldIsEnforced(want.name, wf.name) ? problems : notYetBuilt).push(`${coordinate} is missing`);
          continue;
        }
        if (!outputCompatible(hf.type, wf.type)) problems.push(`${coordinate} is ${hf.type}, contract says ${wf.type}`);
        compareInputs(`${coordinate}(…)`, hf.args, wf.args, problems);
      }
    }
  }
  return { problems, notYetBuilt };
}

describe('supergraph.graphql', () => {
  const { sources, missing } = readSubgraphSources();
  const composition = composeSupergraph(sources);

  it('composes from the subgraph schemas', () => {
    expect(missing, 'every subgraph has a services/<name>/src/schema.graphql').toEqual([]);
    if (!composition.ok) expect.fail(`the subgraphs do not compose:\n${composition.errors.join('\n')}`);
  });

  it('is the committed composition of the current subgraph schemas (otherwise run `pnpm compose`)', () => {
    if (!composition.ok) return expect.fail('composition failed; see the test above');
    const path = join(REPO_ROOT, SUPERGRAPH_FILE);
    if (!existsSync(path)) expect.fail(`${SUPERGRAPH_FILE} is missing: run \`pnpm compose\` and commit it`);
    const committed = readFileSync(path, 'utf8');
    if (committed !== composition.supergraphSdl) {
      const a = committed.split('\n');
      const b = composition.supergraphSdl.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      expect.fail(
        `${SUPERGRAPH_FILE} is stale: run \`pnpm compose\` and commit the result.\n` +
          `First difference at line ${line + 1}:\n  committed: ${a[line] ?? '<end of file>'}\n  composed:  ${b[line] ?? '<end of file>'}`,
      );
    }
  });

  it.skipIf(!existsSync(CONTRACT_PATH))(`keeps the public contract (${CONTRACT_PATH})`, () => {
    if (!composition.ok) return expect.fail('composition failed; see the first test');
    const contract = buildASTSchema(parse(readFileSync(CONTRACT_PATH, 'utf8')));
    const { problems, notYetBuilt } = checkAgainstContract(composition.apiSchema, contract);
    if (notYetBuilt.length) console.info(`Contract parts not yet built (later issues):\n  ${notYetBuilt.join('\n  ')}`);
    expect(problems, `the composed API breaks ${CONTRACT_PATH}:\n  ${problems.join('\n  ')}`).toEqual([]);
  });
});

if (!existsSync(CONTRACT_PATH)) console.warn(`supergraph.test: ${CONTRACT_PATH} is absent, so the contract check is skipped`);

describe('the contract check itself', () => {
  const contract = buildASTSchema(
    parse(`
      type Contact { id: ID! phone: String! tags: [String!]! email: String }
      input CreateContactInput { phone: String! email: String }
      enum MessageCategory { TRANSACTIONAL MARKETING }
      type Campaign { id: ID! }
      type Query { contacts(first: Int = 50, after: String): [Contact!]! campaign(id: ID!): Campaign }
    `),
  );
  const check = (sdl: string) => checkAgainstContract(buildASTSchema(parse(sdl)), contract);

  it('accepts a superset that promises more to readers and asks less of writers', () => {
    const result = check(`
      type Contact { id: ID! phone: String! tags: [String!]! email: String! extra: Int }
      input CreateContactInput { phone: String email: String note: String }
      enum MessageCategory { TRANSACTIONAL MARKETING SUPPORT }
      type Query { contacts(first: Int = 50, after: String, search: String): [Contact!]! }
    `);
    expect(result).toEqual({ problems: [], notYetBuilt: ['type Campaign is missing', 'Query.campaign is missing'] });
  });

  it('reports weaker outputs, stricter inputs, changed defaults, lost enum values and missing foundation fields', () => {
    const { problems } = check(`
      type Contact { id: ID! phone: String tags: [String]! }
      input CreateContactInput { phone: String! email: Int country: String! }
      enum MessageCategory { TRANSACTIONAL }
      type Query { contacts(first: Int = 20, after: String!): [Contact!]! }
    `);
    expect(problems.sort()).toEqual(
      [
        'Contact.phone is String, contract says String!',
        'Contact.tags is [String]!, contract says [String!]!',
        'Contact.email is missing',
        'input CreateContactInput: email is Int, contract says String',
        'input CreateContactInput: country is required but the contract does not have it, so clients do not send it',
        'enum MessageCategory lacks MARKETING',
        'Query.contacts(…): first defaults to 20, contract says 50',
        'Query.contacts(…): after is String!, contract says String',
      ].sort(),
    );
  });
});
