/** What the dispatcher needs from an SMS provider; one adapter per provider. */
export interface ProviderSendRequest {
  /** Our message id: sent along as the provider-side idempotency reference. */
  messageId: string;
  from: string;
  /** E.164 */
  to: string;
  text: string;
  encoding: 'GSM7' | 'UCS2';
  /** Where the provider POSTs the delivery report for this message. */
  dlrUrl: string;
}

export type ProviderSendResult =
  | { ok: true; providerMessageId: string }
  /** Worth retrying later: the provider was unreachable, overloaded or throttling. */
  | { ok: false; transient: true; code: string; message: string }
  /** Retrying cannot help: rejected for this message (or these credentials). */
  | { ok: false; transient: false; code: string; message: string };

/** Messages that one provider request can carry: the same sender, text and encoding, each to its own number. */
export interface ProviderSendGroup {
  from: string;
  text: string;
  encoding: 'GSM7' | 'UCS2';
  /** Distinct recipients (E.164) with our message id for each. */
  recipients: Array<{ messageId: string; to: string }>;
  /** Where the provider POSTs every recipient's delivery report. */
  dlrUrl: string;
}

export interface SmsProvider {
  readonly name: string;
  /**
   * How many recipients one request may carry (a group); 1 when the provider takes one message
   * per request. Bulk sends of one text then cost one request per group instead of per message.
   */
  readonly maxRecipients: number;
  send(request: ProviderSendRequest): Promise<ProviderSendResult>;
  /** One request for a group; one result per recipient, in the group's order. */
  sendGroup(group: ProviderSendGroup): Promise<ProviderSendResult[]>;
  close(): Promise<void>;
}
