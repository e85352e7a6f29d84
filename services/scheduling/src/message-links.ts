import { recordCampaignMessageStatus, recordStepOfferMessage } from './attribution';
import type { SchedulingContext } from './context';

type Data = Record<string, unknown>;

const FIRST_OR_FAILED = new Set(['messaging.message.queued', 'messaging.message.scheduled', 'messaging.message.suppressed', 'messaging.message.failed']);

/**
 * Messaging echoes the correlation scheduling attached to a command on every status event of the
 * message. The first event tells which message a step or scheduled message produced; a FAILED one
 * (unknown template, missing variable, rejected number) fails the step and stops its run, so the
 * failure is visible on the run instead of only in messaging. Idempotent: redelivery changes nothing.
 */
export async function recordMessageStatus(ctx: SchedulingContext, subject: string, data: Data): Promise<void> {
  const correlation = data.correlation as Data | null | undefined;
  const messageId = data.messageId;
  if (!correlation || typeof messageId !== 'string') return;
  // A campaign message: every status counts for the campaign's stats (see attribution.ts).
  if (typeof correlation.campaignRecipientId === 'string') {
    await recordCampaignMessageStatus(ctx, subject, data, correlation.campaignRecipientId);
    return;
  }
  const failed = subject === 'messaging.message.failed';
  // A message's first event (queued, or straight to suppressed/failed/scheduled) names it; sent,
  // delivered and the rest of a message's life add nothing here, and they are the bulk of the stream.
  if (!FIRST_OR_FAILED.has(subject)) return;
  const error = failed ? `message ${messageId} failed: ${String(data.errorCode ?? 'unknown error')}` : null;
  const now = ctx.clock.now();

  if (typeof correlation.stepId === 'string') {
    const stepId = correlation.stepId;
    // A step with an offer: the message its code went out in.
    if (typeof correlation.offerCode === 'string') await recordStepOfferMessage(ctx, correlation.offerCode, messageId);
    if (!failed) {
      await ctx.db.updateTable('scheduled_steps').set({ message_id: messageId }).where('id', '=', stepId).where('message_id', 'is', null).execute();
    } else {
      await ctx.db.transaction().execute(async (trx) => {
        await trx.updateTable('scheduled_steps').set({ message_id: messageId }).where('id', '=', stepId).where('message_id', 'is', null).execute();
        const step = await trx
          .updateTable('scheduled_steps')
          .set({ status: 'FAILED', error })
          .where('id', '=', stepId)
          .where('status', '=', 'DONE')
          .returning(['run_id', 'step_index'])
          .executeTakeFirst();
        if (!step) return;
        await trx
          .updateTable('automation_runs')
          .set({ status: 'FAILED', failure: `step ${step.step_index}: ${error}`, updated_at: now })
          .where('id', '=', step.run_id)
          .where('status', 'in', ['ACTIVE', 'COMPLETED'])
          .execute();
        await trx.updateTable('scheduled_steps').set({ status: 'CANCELED' }).where('run_id', '=', step.run_id).where('status', '=', 'PENDING').execute();
      });
    }
  }

  if (typeof correlation.scheduledMessageId === 'string') {
    const id = correlation.scheduledMessageId;
    await ctx.db.updateTable('scheduled_messages').set({ message_id: messageId }).where('id', '=', id).where('message_id', 'is', null).execute();
    if (failed) {
      await ctx.db
        .updateTable('scheduled_messages')
        .set({ status: 'FAILED', error, updated_at: now })
        .where('id', '=', id)
        .where('status', '=', 'SENT')
        .execute();
    }
  }
}
