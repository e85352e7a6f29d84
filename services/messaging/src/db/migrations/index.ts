import type { Migration } from 'kysely';
import * as foundation from './2026-11-27T10-00-00_messaging-foundation';
import * as verifications from './2026-11-27T12-00-00_verifications';
import * as messagingPolicy from './2026-11-27T12-00-01_messaging-policy';
import * as conversations from './2026-11-27T14-00-01_conversations';
import * as keywordReplies from './2026-11-27T14-00-02_keyword-replies';
import * as conversationFeedback from './2026-11-27T16-00-02_conversation-feedback';
import * as messageRequester from './2026-11-27T18-00-00_message-requester';
import * as historyIndexOnlyByMessage from './2026-11-27T18-00-01_history-index-only-by-message';

export const migrations: Record<string, Migration> = {
  '2026-11-27T10-00-00_messaging-foundation': foundation,
  '2026-11-27T12-00-00_verifications': verifications,
  '2026-11-27T12-00-01_messaging-policy': messagingPolicy,
  '2026-11-27T14-00-01_conversations': conversations,
  '2026-11-27T14-00-02_keyword-replies': keywordReplies,
  '2026-11-27T16-00-02_conversation-feedback': conversationFeedback,
  '2026-11-27T18-00-00_message-requester': messageRequester,
  '2026-11-27T18-00-01_history-index-only-by-message': historyIndexOnlyByMessage,
};
