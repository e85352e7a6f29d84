import type { ColumnType } from 'kysely';

type NpsCategory = 'PROMOTER' | 'PASSIVE' | 'DETRACTOR';
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export interface SurveysTable {
  id: string;
  name: string;
  question: string;
  follow_up: string | null;
  thank_you: string | null;
  touchpoint: string | null;
  /** ISO-8601 duration, e.g. P3D */
  response_window: string;
  created_at: CreatedAt;
}

type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** A score (and comment) for a survey. category (nps.ts) and touchpoint are stored so reports group in SQL. */
export interface SurveyResponsesTable {
  id: string;
  survey_id: string;
  /** the invitation answered; null for responses from before invitations existed */
  invitation_id: string | null;
  /** null once the contact is erased: the anonymous score stays in the aggregates */
  contact_id: string | null;
  score: number;
  /** set from the score by a trigger (nps.ts buckets) whatever the writer gives */
  category: ColumnType<NpsCategory, NpsCategory | undefined, NpsCategory>;
  /** the survey's touchpoint when the invitation was sent */
  touchpoint: string | null;
  comment: string | null;
  responded_at: Timestamp;
}

/** The contract's InvitationStatus; SENT and ANSWERED are open (see the survey-flow migration). */
export type InvitationStatus = 'SENT' | 'ANSWERED' | 'COMPLETED' | 'EXPIRED' | 'FAILED';

/** One survey sent to one contact. */
export interface SurveyInvitationsTable {
  id: string;
  survey_id: string;
  /** null once the contact is erased */
  contact_id: string | null;
  status: ColumnType<InvitationStatus, InvitationStatus | undefined, InvitationStatus>;
  /** feedback.cmd.send_survey requestId (unique); null for sendSurvey */
  request_id: string | null;
  /** the one re-prompt after an unusable reply was sent */
  reprompted: ColumnType<boolean, boolean | undefined, boolean>;
  /** what the next reply is: the score, the comment, or nothing (closed) */
  awaiting: 'score' | 'comment' | null;
  touchpoint: string | null;
  /** why a FAILED invitation was not sent, e.g. UNSUBSCRIBED */
  failure_reason: string | null;
  /** the requester's correlation of feedback.cmd.send_survey */
  correlation: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  sent_at: Timestamp;
  /** sent_at + the survey's responseWindow: replies after it are not answers */
  expires_at: Timestamp;
  answered_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  created_at: CreatedAt;
}

/** Contacts erased here (contacts.contact.deleted): ids only, so a racing send or reply writes nothing for them. */
export interface ErasedContactsTable {
  contact_id: string;
  erased_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface Database {
  surveys: SurveysTable;
  survey_responses: SurveyResponsesTable;
  survey_invitations: SurveyInvitationsTable;
  erased_contacts: ErasedContactsTable;
}
