"""Independent implementations the Rust tests call: the official Standard Webhooks and Stripe
libraries sign and verify, so Relay's code is never checked only against itself.

  sign-standard <whsec_secret> <msg_id> <unix_ts>       body on stdin -> webhook-signature value
  verify-stripe <secret> <stripe_signature_header>      body on stdin -> exit 0 if Stripe accepts
  verify-standard <whsec_secret> <headers_json>         body on stdin -> exit 0 if the official library accepts
  hmac-hex <key>                                        message on stdin -> hex HMAC-SHA256 (stdlib)
"""
import sys
from datetime import datetime, timezone

def main() -> int:
    body = sys.stdin.buffer.read().decode("utf-8")
    cmd = sys.argv[1]
    if cmd == "sign-standard":
        from standardwebhooks.webhooks import Webhook
        secret, msg_id, ts = sys.argv[2], sys.argv[3], int(sys.argv[4])
        print(Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body))
        return 0
    if cmd == "verify-stripe":
        import stripe
        secret, header = sys.argv[2], sys.argv[3]
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance=300)
        print("ok")
        return 0
    if cmd == "verify-standard":
        import json
        from standardwebhooks.webhooks import Webhook
        Webhook(sys.argv[2]).verify(body, json.loads(sys.argv[3]))
        print("ok")
        return 0
    if cmd == "hmac-hex":
        import hashlib
        import hmac
        print(hmac.new(sys.argv[2].encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest())
        return 0
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2

if __name__ == "__main__":
    sys.exit(main())
