/**
 * Relay's client for the products. Types come from infra/openapi.yaml (generated into
 * `openapi.ts` at build), so the client and the server are described by the same document.
 *
 * Publishing is exactly-once per idempotency key: the client picks a key when the caller gives
 * none and keeps it across its own retries, so a retried publish never makes a second event.
 * It retries what is worth retrying (503, and 409 or 429 when the server says when with
 * Retry-After; a network failure for requests that are safe to repeat), and never a 4xx the
 * caller must fix.
 *
 * Webhook verification is the official Standard Webhooks package's, re-exported as is.
 */

import { randomUUID } from "node:crypto";

import type { components } from "./openapi.js";

export { Webhook, WebhookVerificationError } from "standardwebhooks";

type Schemas = components["schemas"];
export type EventInput = Schemas["EventInput"];
export type Envelope = Schemas["Envelope"];
export type Accepted = Schemas["Accepted"];
export type BatchResult = Schemas["BatchResult"];
export type Delivery = Schemas["Delivery"];
export type Subscription = Schemas["Subscription"];
export type SubscriptionCreate = Schemas["SubscriptionCreate"];
export type SubscriptionChanges = Schemas["SubscriptionChanges"];
export type Source = Schemas["Source"];
export type SourceInput = Schemas["SourceInput"];
export type SourceRequest = Schemas["SourceRequest"];
export type RawRequest = Schemas["RawRequest"];
export type EmailRequest = Schemas["EmailRequest"];
export type EmailMessage = Schemas["EmailMessage"];
export type Problem = Schemas["Problem"];

/** A page of a listing, and the cursor of the next (`null` at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ListedEvent {
  event: Envelope;
  receivedAt: string;
  deliveries: { delivered: number; failing: number };
}

export interface EventFilter {
  type?: string;
  source?: string;
  deliveryState?: "failed" | "delivered" | "none";
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

/** Called before each retry: what failed and how long the client waits. */
export interface RetryInfo {
  attempt: number;
  status?: number;
  error?: unknown;
  delayMs: number;
  idempotencyKey?: string;
}

export interface RelayOptions {
  /** Relay's API, e.g. https://relay.example.com or http://127.0.0.1:3000 */
  baseUrl: string;
  /** A product key (publishing) or an organisation key (everything else). */
  apiKey: string;
  /** Retries after the first attempt (default 5). */
  maxRetries?: number;
  /** The longest wait between attempts, whatever Retry-After says (default 30 s). */
  maxDelayMs?: number;
  /** The platform's fetch unless given (tests pass a recording one). */
  fetch?: typeof fetch;
  onRetry?: (info: RetryInfo) => void;
}

/** A problem document from Relay (RFC 9457), with the HTTP status. */
export class RelayError extends Error {
  readonly status: number;
  readonly problem?: Problem;

  constructor(status: number, problem?: Problem) {
    super(problem ? `${problem.title}: ${problem.detail}` : `Relay answered ${status}`);
    this.name = "RelayError";
    this.status = status;
    this.problem = problem;
  }
}

interface Call {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  idempotencyKey?: string;
  /** Safe to send again after a network failure (the server may have acted on the first). */
  repeatable: boolean;
}

export class Relay {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly maxRetries: number;
  private readonly maxDelayMs: number;
  private readonly fetchFn: typeof fetch;
  private readonly onRetry?: (info: RetryInfo) => void;

  constructor(options: RelayOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.maxRetries = options.maxRetries ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.fetchFn = options.fetch ?? fetch;
    this.onRetry = options.onRetry;
  }

  readonly events = {
    /** Publishes one event once: the same key (given or picked here) on every retry. */
    publish: (event: EventInput, options: { idempotencyKey?: string } = {}): Promise<Accepted> =>
      this.send({ method: "POST", path: "/v1/events", body: event, idempotencyKey: options.idempotencyKey ?? randomUUID(), repeatable: true }),
    /** Publishes up to 100 events with one key; each item has its own result. */
    publishBatch: (events: EventInput[], options: { idempotencyKey?: string } = {}): Promise<BatchResult> =>
      this.send({ method: "POST", path: "/v1/events/batch", body: { events }, idempotencyKey: options.idempotencyKey ?? randomUUID(), repeatable: true }),
    list: async (filter: EventFilter = {}): Promise<Page<ListedEvent>> => {
      const page = await this.send<{ events: ListedEvent[]; nextCursor: string | null }>({ method: "GET", path: "/v1/events", query: { ...filter }, repeatable: true });
      return { items: page.events, nextCursor: page.nextCursor };
    },
    get: (id: string): Promise<{ event: Envelope; deliveries: Delivery[] }> =>
      this.send({ method: "GET", path: `/v1/events/${enc(id)}`, repeatable: true }),
    replay: (id: string, subscriptionId?: string): Promise<{ eventId: string; replayedTo: string[] }> =>
      this.send({ method: "POST", path: `/v1/events/${enc(id)}/replay`, body: subscriptionId ? { subscriptionId } : {}, repeatable: false }),
  };

  readonly subscriptions = {
    /** Creates an endpoint; the answer carries its `secret`, shown only this once. */
    create: (input: SubscriptionCreate): Promise<Subscription> => this.send({ method: "POST", path: "/v1/subscriptions", body: input, repeatable: false }),
    list: async (): Promise<Subscription[]> =>
      (await this.send<{ subscriptions: Subscription[] }>({ method: "GET", path: "/v1/subscriptions", repeatable: true })).subscriptions,
    get: (id: string): Promise<Subscription> => this.send({ method: "GET", path: `/v1/subscriptions/${enc(id)}`, repeatable: true }),
    update: (id: string, changes: SubscriptionChanges): Promise<Subscription> =>
      this.send({ method: "PATCH", path: `/v1/subscriptions/${enc(id)}`, body: changes, repeatable: true }),
    delete: (id: string): Promise<void> => this.send({ method: "DELETE", path: `/v1/subscriptions/${enc(id)}`, repeatable: true }),
    rotateSecret: (id: string): Promise<{ secret: string; previousSecretsValidUntil: string }> =>
      this.send({ method: "POST", path: `/v1/subscriptions/${enc(id)}/secret/rotate`, repeatable: false }),
    test: (id: string): Promise<{ eventId: string; eventType: string }> =>
      this.send({ method: "POST", path: `/v1/subscriptions/${enc(id)}/test`, repeatable: false }),
    recover: (id: string, since: Date | string): Promise<{ recovered: string[] }> =>
      this.send({ method: "POST", path: `/v1/subscriptions/${enc(id)}/recover`, body: { since: new Date(since).toISOString() }, repeatable: true }),
  };

  readonly sources = {
    /** Registers an incoming webhook source; give the provider the answer's `url`. */
    create: (input: SourceInput): Promise<Source> => this.send({ method: "POST", path: "/v1/sources", body: input, repeatable: false }),
    list: async (): Promise<Source[]> => (await this.send<{ sources: Source[] }>({ method: "GET", path: "/v1/sources", repeatable: true })).sources,
    get: (id: string): Promise<Source> => this.send({ method: "GET", path: `/v1/sources/${enc(id)}`, repeatable: true }),
    delete: (id: string): Promise<void> => this.send({ method: "DELETE", path: `/v1/sources/${enc(id)}`, repeatable: true }),
    /** What the source received, newest first. */
    requests: async (id: string, filter: { outcome?: SourceRequest["outcome"]; limit?: number; cursor?: string } = {}): Promise<Page<SourceRequest>> => {
      const page = await this.send<{ requests: SourceRequest[]; nextCursor: string | null }>({ method: "GET", path: `/v1/sources/${enc(id)}/requests`, query: { ...filter }, repeatable: true });
      return { items: page.requests, nextCursor: page.nextCursor };
    },
    requestBody: (id: string, requestId: string): Promise<RawRequest> =>
      this.send({ method: "GET", path: `/v1/sources/${enc(id)}/requests/${enc(requestId)}/body`, repeatable: true }),
  };

  readonly emails = {
    /** Sends a mail once per idempotency key (a template with its data, or subject and parts). */
    send: (mail: EmailRequest, options: { idempotencyKey?: string } = {}): Promise<{ messageId: string; status: "queued"; receivedAt: string }> =>
      this.send({ method: "POST", path: "/v1/emails", body: mail, idempotencyKey: options.idempotencyKey ?? randomUUID(), repeatable: true }),
    /** What became of a mail: status, tries, history. */
    get: (id: string): Promise<EmailMessage> => this.send({ method: "GET", path: `/v1/emails/${enc(id)}`, repeatable: true }),
  };

  /** One call, with the retries it deserves. */
  private async send<T>(call: Call): Promise<T> {
    const url = new URL(this.baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.apiKey}`, accept: "application/json" };
    if (call.body !== undefined) headers["content-type"] = "application/json";
    if (call.idempotencyKey) headers["idempotency-key"] = call.idempotencyKey;
    const init = { method: call.method, headers, body: call.body === undefined ? undefined : JSON.stringify(call.body) };

    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchFn(url, init);
      } catch (error) {
        if (!call.repeatable || attempt > this.maxRetries) throw error;
        await this.wait({ attempt, error, delayMs: this.backoff(attempt), idempotencyKey: call.idempotencyKey });
        continue;
      }
      if (response.ok) {
        return (response.status === 204 ? undefined : await response.json()) as T;
      }
      const problem = await response.json().catch(() => undefined);
      const retryAfter = seconds(response.headers.get("retry-after"));
      // 429, and 409 with Retry-After, mean nothing was done: always safe to send again. A 503
      // may come after part of the work (a replay queued to some subscriptions): only requests
      // that are safe to repeat (idempotent, or publishing under the same key) retry it.
      const nothingDone = (response.status === 409 || response.status === 429) && retryAfter !== undefined;
      const worthIt = nothingDone || (response.status === 503 && call.repeatable);
      if (!worthIt || attempt > this.maxRetries) throw new RelayError(response.status, problem as Problem | undefined);
      const delayMs = retryAfter !== undefined ? retryAfter * 1000 : this.backoff(attempt);
      await this.wait({ attempt, status: response.status, delayMs, idempotencyKey: call.idempotencyKey });
    }
  }

  private backoff(attempt: number): number {
    return Math.min(500 * 2 ** (attempt - 1), this.maxDelayMs) * (0.75 + Math.random() / 2);
  }

  private async wait(info: RetryInfo): Promise<void> {
    const delayMs = Math.min(info.delayMs, this.maxDelayMs);
    this.onRetry?.({ ...info, delayMs });
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function seconds(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim());
}
