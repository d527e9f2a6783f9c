/** The local stack the Rust harness (tests/typescript.rs) started for these tests. */
export const env = {
  url: required("RELAY_URL"),
  productKey: required("RELAY_PRODUCT_KEY"),
  orgKey: required("RELAY_ORG_KEY"),
  orgId: required("RELAY_ORG_ID"),
};

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/typescript.rs (./dev test)`);
  return value;
}

/** A fetch that records every request's method, path and idempotency key. */
export function recordingFetch(): { fetch: typeof fetch; calls: { method: string; path: string; key: string | null }[] } {
  const calls: { method: string; path: string; key: string | null }[] = [];
  const recorder: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    calls.push({ method: init?.method ?? "GET", path: url.pathname, key: headers.get("idempotency-key") });
    return fetch(input, init);
  };
  return { fetch: recorder, calls };
}
