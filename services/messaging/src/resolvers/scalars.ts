import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

function toDate(value: unknown): Date {
  if (typeof value === 'string') {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime()) && /^\d{4}-\d{2}-\d{2}T/.test(value)) return d;
  }
  throw new GraphQLError(`DateTime must be an ISO-8601 date-time with offset, e.g. 2026-11-27T10:00:00.000Z; got ${JSON.stringify(value)}`, {
    extensions: { code: 'BAD_USER_INPUT' },
  });
}

export const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  description: 'ISO-8601 date-time with offset, e.g. 2026-11-27T10:00:00.000Z',
  serialize: (value) => (value instanceof Date ? value.toISOString() : toDate(value).toISOString()),
  parseValue: toDate,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING)
      throw new GraphQLError('DateTime must be a string such as "2026-11-27T10:00:00.000Z"', { extensions: { code: 'BAD_USER_INPUT' } });
    return toDate(ast.value);
  },
});

function literal(ast: ValueNode, variables: Record<string, unknown> | null | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literal(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literal(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      return undefined;
  }
}

export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (ast, variables) => literal(ast, variables),
});
