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

export interface SmsProvider {
  readonly name: string;
  send(request: ProviderSendRequest): Promise<ProviderSendResult>;
  close(): Promise<void>;
}
