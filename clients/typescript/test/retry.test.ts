// Run alone by tests/typescript.rs while the fault proxy fails every PutEvents: the first
// publish is a 503; the harness clears the fault when this test signals it saw one, and the
// client's retry, with the same idempotency key, is accepted once.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";

import { Relay, type RetryInfo } from "../src/index.js";
import { env, recordingFetch } from "./env.js";

test("a 503 is retried after Retry-After with the same idempotency key", async () => {
  const signal = process.env.RELAY_FAULT_SIGNAL;
  assert.ok(signal, "RELAY_FAULT_SIGNAL names the file that tells the harness to clear the fault");
  const recorder = recordingFetch();
  const retries: RetryInfo[] = [];
  const relay = new Relay({
    baseUrl: env.url,
    apiKey: env.productKey,
    fetch: recorder.fetch,
    onRetry: (info) => {
      retries.push(info);
      writeFileSync(signal, String(info.status));
    },
  });
  const accepted = await relay.events.publish({
    eventType: "candidate.hired",
    organizationId: env.orgId,
    payload: { candidateId: "cand-ts-retry", jobId: "job-1", startDate: "2026-12-01" },
  });
  assert.match(accepted.eventId, /^[0-9a-f-]{36}$/);
  assert.ok(retries.length >= 1, "at least one retry");
  assert.equal(retries[0].status, 503);
  assert.ok(retries[0].delayMs >= 1000, `waited as Retry-After said: ${retries[0].delayMs} ms`);
  const keys = new Set(recorder.calls.map((c) => c.key));
  assert.equal(keys.size, 1, `one key across every attempt: ${[...keys]}`);
  assert.equal(recorder.calls.length, retries.length + 1);

  // The event exists once: publishing again with that key replays the same event.
  const again = await new Relay({ baseUrl: env.url, apiKey: env.productKey }).events.publish(
    { eventType: "candidate.hired", organizationId: env.orgId, payload: { candidateId: "cand-ts-retry", jobId: "job-1", startDate: "2026-12-01" } },
    { idempotencyKey: [...keys][0] ?? undefined },
  );
  assert.equal(again.eventId, accepted.eventId);
});
