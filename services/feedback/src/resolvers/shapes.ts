import type { InvitationStatus } from '../db/database';
import type { InvitationRow } from '../invitations';
import type { ResponseRow, SurveyRow } from '../surveys';

/** Row → GraphQL shapes shared by the resolvers. */

export function surveyShape(row: SurveyRow) {
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

/** Only rows with a contact are shown (erased contacts' responses are anonymous aggregates). */
export function responseShape(row: ResponseRow) {
  return {
    id: row.id,
    surveyId: row.survey_id,
    contact: { __typename: 'Contact', id: row.contact_id },
    score: row.score,
    category: row.category,
    comment: row.comment,
    respondedAt: row.responded_at.toISOString(),
  };
}

export function invitationShape(row: InvitationRow, status: InvitationStatus) {
  return {
    id: row.id,
    surveyId: row.survey_id,
    contact: { __typename: 'Contact', id: row.contact_id },
    status,
    sentAt: row.sent_at.toISOString(),
  };
}

export type SurveyResponseShape = ReturnType<typeof responseShape>;
export type SurveyInvitationShape = ReturnType<typeof invitationShape>;
