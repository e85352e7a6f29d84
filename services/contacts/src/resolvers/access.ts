import { forbidden, type RequestContext } from '@textloop/service-kit';

/** Roles of contract/runtime.md: admin and app may change contacts and track events; agent and viewer only read. */
export function requireWriter(ctx: RequestContext): void {
  if (ctx.role !== 'admin' && ctx.role !== 'app') {
    throw forbidden(`The ${ctx.role} role may only read contacts; use an admin or app API key to change them`);
  }
}

/** The consent ledger's source for a change made through the API. */
export function apiSource(ctx: RequestContext): string {
  return ctx.keyName ? `graphql:${ctx.keyName}` : 'graphql';
}
