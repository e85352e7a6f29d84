import { GraphQLError } from 'graphql';
import type { ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { findInvitation, sendSurvey, statusAt } from '../invitations';
import type { NpsCategory } from '../nps';
import { listResponses, responseOfInvitation } from '../responses';
import { findSurvey } from '../surveys';
import { invitationShape, responseShape, surveyShape, type SurveyInvitationShape } from './shapes';

/** sendSurvey, surveyInvitation, surveyResponses and the SurveyInvitation fields. */
export function invitationResolvers(deps: ServiceDeps<Database>) {
  return {
    Query: {
      surveyInvitation: async (_: unknown, args: { id: string }) => {
        const row = await findInvitation(deps.db, args.id);
        // An erased contact's invitation is anonymous: it shows only in the report's counts.
        if (!row || row.contact_id === null) return null;
        return invitationShape(row, statusAt(row, deps.clock.now()));
      },
      surveyResponses: async (_: unknown, args: { surveyId?: string | null; category?: NpsCategory | null; first?: number | null; after?: string | null }) => {
        const page = await listResponses(deps.db, { surveyId: args.surveyId, category: args.category }, args.first, args.after);
        return {
          nodes: page.nodes.map(responseShape),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
          totalCount: page.totalCount,
        };
      },
    },
    Mutation: {
      sendSurvey: async (_: unknown, args: { surveyId: string; contactId: string }) => {
        const row = await sendSurvey(deps, args.surveyId, args.contactId);
        return invitationShape(row, row.status);
      },
    },
    SurveyInvitation: {
      survey: async (invitation: SurveyInvitationShape) => {
        const row = await findSurvey(deps.db, invitation.surveyId);
        // Invitations cascade with their survey, so this holds unless a delete races the read.
        if (!row) throw new GraphQLError(`survey ${invitation.surveyId} of invitation ${invitation.id} is gone`);
        return surveyShape(row);
      },
      response: async (invitation: SurveyInvitationShape) => {
        const row = await responseOfInvitation(deps.db, invitation.id);
        return row ? responseShape(row) : null;
      },
    },
  };
}
