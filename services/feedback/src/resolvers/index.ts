import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { RequestContext, ServiceDeps } from '@textloop/service-kit';
import type { Database } from '../db/database';
import { npsCategory } from '../nps';
import { createSurvey, findSurvey, listSurveys, responsesOfContact, type ResponseRow, type SurveyInput, type SurveyRow } from '../surveys';

function surveyShape(row: SurveyRow) {
  return {
    id: row.id,
    name: row.name,
    question: row.question,
    followUp: row.follow_up,
    thankYou: row.thank_you,
    touchpoint: row.touchpoint,
    responseWindow: row.response_window,
    createdAt: row.created_at.toISOString(),
  };
}

function responseShape(row: ResponseRow) {
  return {
    id: row.id,
    surveyId: row.survey_id,
    contact: { __typename: 'Contact', id: row.contact_id },
    score: row.score,
    category: npsCategory(row.score),
    comment: row.comment,
    respondedAt: row.responded_at.toISOString(),
  };
}

export function createResolvers(deps: ServiceDeps<Database>): GraphQLResolverMap<RequestContext> {
  return {
    Query: {
      survey: async (_: unknown, args: { id: string }) => {
        const row = await findSurvey(deps.db, args.id);
        return row ? surveyShape(row) : null;
      },
      surveys: async () => (await listSurveys(deps.db)).map(surveyShape),
    },
    Mutation: {
      createSurvey: async (_: unknown, args: { input: SurveyInput }) => surveyShape(await createSurvey(deps.db, deps.clock, args.input)),
    },
    Contact: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      surveyResponses: async (contact: { id: string }) => (await responsesOfContact(deps.db, contact.id)).map(responseShape),
    },
    SurveyResponse: {
      survey: async (response: ReturnType<typeof responseShape>) => {
        const row = await findSurvey(deps.db, response.surveyId);
        // Responses cascade with their survey, so this holds unless a delete races the read.
        if (!row) throw new Error(`survey ${response.surveyId} of response ${response.id} is gone`);
        return surveyShape(row);
      },
    },
  };
}
