import type { RequestContext } from '@textloop/service-kit';
import { setSubscription, consentHistory } from '../consent';
import { createContact, deleteContact, getContactByExternalId, getContactByPhone, listContacts, updateContact, type ContactFilter } from '../contacts';
import { importContacts } from '../import';
import type { CreateContactInput, UpdateContactInput } from '../validation';
import { apiSource, requireWriter } from './access';
import { toConsentChange, toContact, type ContactShape } from './mappers';
import type { ResolverDeps } from './types';

export function contactResolvers(deps: ResolverDeps) {
  return {
    Query: {
      contact: async (_: unknown, args: { id: string }) => {
        const row = await deps.loadContact(args.id);
        return row ? toContact(row) : null;
      },
      contactByPhone: async (_: unknown, args: { phone: string }) => {
        const row = await getContactByPhone(deps.db, args.phone);
        return row ? toContact(row) : null;
      },
      contactByExternalId: async (_: unknown, args: { externalId: string }) => {
        const row = await getContactByExternalId(deps.db, args.externalId);
        return row ? toContact(row) : null;
      },
      contacts: async (_: unknown, args: { filter?: ContactFilter | null; first?: number | null; after?: string | null }) => {
        const page = await listContacts(deps, args.filter, args.first, args.after);
        return {
          nodes: page.rows.map(toContact),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
          totalCount: page.totalCount,
        };
      },
    },
    Mutation: {
      createContact: async (_: unknown, args: { input: CreateContactInput }, ctx: RequestContext) => {
        requireWriter(ctx);
        return toContact(await createContact(deps, args.input, apiSource(ctx)));
      },
      updateContact: async (_: unknown, args: { id: string; input: UpdateContactInput }, ctx: RequestContext) => {
        requireWriter(ctx);
        return toContact(await updateContact(deps, args.id, args.input));
      },
      deleteContact: async (_: unknown, args: { id: string }, ctx: RequestContext) => {
        requireWriter(ctx);
        await deleteContact(deps, args.id);
        return true;
      },
      importContacts: async (_: unknown, args: { contacts: CreateContactInput[] }, ctx: RequestContext) => {
        requireWriter(ctx);
        return importContacts(deps, args.contacts, 'import');
      },
      unsubscribeContact: async (_: unknown, args: { id: string }, ctx: RequestContext) => {
        requireWriter(ctx);
        return toContact(await setSubscription(deps, args.id, false, 'API', apiSource(ctx)));
      },
      resubscribeContact: async (_: unknown, args: { id: string }, ctx: RequestContext) => {
        requireWriter(ctx);
        return toContact(await setSubscription(deps, args.id, true, 'API', apiSource(ctx)));
      },
    },
    Contact: {
      __resolveReference: async (reference: { id: string }) => {
        const row = await deps.loadContact(reference.id);
        return row ? toContact(row) : null;
      },
      consentHistory: async (contact: ContactShape) => (await consentHistory(deps, contact.id)).map(toConsentChange),
    },
  };
}
