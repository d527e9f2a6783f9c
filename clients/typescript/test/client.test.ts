// The client against the local stack (started by tests/typescript.rs): publish and replay,
// a subscription's round trip, and a delivered webhook verified by the official Standard
// Webhooks package the client re-exports.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { Relay, RelayError, Webhook } from "../src/index.js";
import { env, recordingFetch } from "./env.js";

const hire = (candidateId: string) => ({
  eventType: "candidate.hired" as const,
  organizationId: env.orgId,
  payload: { candidateId, jobId: "job-1", startDate: "2026-12-01" },
});

test("publish once per key: the same key and body replay the first event", async () => {
  const relay = new Relay({ baseUrl: env.url, apiKey: env.productKey });
  const first = await relay.events.publish(hire("cand-ts-1"), { idempotencyKey: "ts-publish-1" });
  const again = await relay.events.publish(hire("cand-ts-1"), { idempotencyKey: "ts-publish-1" });
  assert.equal(again.eventId, first.eventId);
  const batch = await relay.events.publishBatch([hire("cand-ts-2"), hire("cand-ts-3")]);
  assert.equal(batch.accepted, 2);
});

test("a 4xx is not retried: the caller must fix it", async () => {
  const recorder = recordingFetch();
  const relay = new Relay({ baseUrl: env.url, apiKey: env.productKey, fetch: recorder.fetch });
  await assert.rejects(
    relay.events.publish({ eventType: "candidate.hired", organizationId: env.orgId, payload: { candidateId: "c" } } as never),
    (e: unknown) => e instanceof RelayError && e.status === 422 && e.problem?.type === "https://relay.dev/problems/invalid-event",
  );
  assert.equal(recorder.calls.length, 1);
});

test("a subscription's round trip", async () => {
  const relay = new Relay({ baseUrl: env.url, apiKey: env.orgKey });
  const created = await relay.subscriptions.create({ url: "https://hooks.example.com/ts", eventTypes: ["candidate.*"], description: "ts" });
  assert.match(created.secret ?? "", /^whsec_/);
  assert.equal((await relay.subscriptions.get(created.id)).description, "ts");
  const updated = await relay.subscriptions.update(created.id, { description: "changed", rateLimit: 5 });
  assert.equal(updated.description, "changed");
  assert.ok((await relay.subscriptions.list()).some((s) => s.id === created.id));
  const rotated = await relay.subscriptions.rotateSecret(created.id);
  assert.notEqual(rotated.secret, created.secret);
  await relay.subscriptions.delete(created.id);
  await assert.rejects(relay.subscriptions.get(created.id), (e: unknown) => e instanceof RelayError && e.status === 404);
});

test("a delivered webhook passes the official verifier", async () => {
  const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    const org = new Relay({ baseUrl: env.url, apiKey: env.orgKey });
    // The local stack opts in to loopback endpoints; a deployment refuses them.
    const sub = await org.subscriptions.create({ url: `http://127.0.0.1:${port}/hook`, eventTypes: ["candidate.hired"] } as never);
    const published = await new Relay({ baseUrl: env.url, apiKey: env.productKey }).events.publish(hire("cand-ts-webhook"));
    const deadline = Date.now() + 30_000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 1, "delivered once within 30 s");
    const { headers, body } = received[0];
    const verified = new Webhook(sub.secret ?? "").verify(body, {
      "webhook-id": String(headers["webhook-id"]),
      "webhook-timestamp": String(headers["webhook-timestamp"]),
      "webhook-signature": String(headers["webhook-signature"]),
    }) as { type: string; data: { eventId: string } };
    assert.equal(verified.type, "candidate.hired");
    assert.equal(verified.data.eventId, published.eventId);
    assert.throws(() => new Webhook(sub.secret ?? "").verify(body.replace("cand-ts-webhook", "cand-forged"), headers as Record<string, string>));
    await org.subscriptions.delete(sub.id);
  } finally {
    server.close();
  }
});

test("a mail is sent once per key, and a missing template variable is named", async () => {
  const relay = new Relay({ baseUrl: env.url, apiKey: env.productKey });
  const mail = {
    organizationId: env.orgId,
    to: ["ts-candidate@example.com"],
    template: "interview-invitation" as const,
    data: { candidateName: "Ada", jobTitle: "Engineer", organizationName: "Acme", dateTime: "2026-12-01 10:00", confirmUrl: "https://example.com/c" },
  };
  const first = await relay.emails.send(mail, { idempotencyKey: "ts-mail-1" });
  const again = await relay.emails.send(mail, { idempotencyKey: "ts-mail-1" });
  assert.equal(again.messageId, first.messageId);
  const logged = await relay.emails.get(first.messageId);
  assert.equal(logged.sender, "recruitiq");
  await assert.rejects(
    relay.emails.send({ ...mail, data: { candidateName: "Ada" } }),
    (e: unknown) => e instanceof RelayError && e.status === 422 && (e.problem?.detail ?? "").includes("confirmUrl"),
  );
});
