import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { RequestContext, ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { npsReportResolvers } from './nps-report';
import { invitationResolvers } from './invitations';
import { responseShape, surveyShape, type SurveyResponseShape } from './shapes';
import { createSurvey, findSurvey, listSurveys, responsesOfContact, type SurveyInput } from '../surveys';

export function createResolvers(deps: ServiceDeps<Database>): GraphQLResolverMap<RequestContext> {
  const nps = npsReportResolvers(deps);
  const invitations = invitationResolvers(deps);
  return {
    NpsReport: nps.NpsReport,
    Query: {
      ...nps.Query,
      ...invitations.Query,
      survey: async (_: unknown, args: { id: string }) => {
        const row = await findSurvey(deps.db, args.id);
        return row ? surveyShape(row) : null;
      },
      surveys: async () => (await listSurveys(deps.db)).map(surveyShape),
    },
    Mutation: {
      ...invitations.Mutation,
      createSurvey: async (_: unknown, args: { input: SurveyInput }) => surveyShape(await createSurvey(deps.db, deps.clock, args.input)),
    },
    Contact: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      surveyResponses: async (contact: { id: string }) => (await responsesOfContact(deps.db, contact.id)).map(responseShape),
    },
    SurveyInvitation: invitations.SurveyInvitation,
    SurveyResponse: {
      survey: async (response: SurveyResponseShape) => {
        const row = await findSurvey(deps.db, response.surveyId);
        // Responses cascade with their survey, so this holds unless a delete races the read.
        if (!row) throw new Error(`survey ${response.surveyId} of response ${response.id} is gone`);
        return surveyShape(row);
      },
    },
  };
}
