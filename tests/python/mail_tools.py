"""What the emulator's SES sent, read by an independent MIME parser (Python's `email` package),
so Relay's mail is never checked only against the code that built it.

  sent <emulator_url>   -> JSON list, oldest first: {id, source, destinations, from, to, cc, bcc,
                           reply_to, subject, message_id, text, html, content_types}
"""
import email
import email.policy
import json
import sys
import urllib.request


def parse(raw: str) -> dict:
    msg = email.message_from_string(raw, policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return {
        "from": str(msg["from"] or ""),
        "to": [a.addr_spec for a in msg["to"].addresses] if msg["to"] else [],
        "cc": [a.addr_spec for a in msg["cc"].addresses] if msg["cc"] else [],
        "bcc": str(msg["bcc"]) if msg["bcc"] else None,
        "reply_to": [a.addr_spec for a in msg["reply-to"].addresses] if msg["reply-to"] else [],
        "subject": str(msg["subject"] or ""),
        "message_id": str(msg["message-id"] or ""),
        "text": text.get_content() if text else None,
        "html": html.get_content() if html else None,
        "content_types": [p.get_content_type() for p in msg.walk()],
    }


def main() -> int:
    if sys.argv[1] != "sent":
        print(f"unknown command {sys.argv[1]}", file=sys.stderr)
        return 2
    with urllib.request.urlopen(f"{sys.argv[2]}/moto-api/data.json") as r:
        data = json.load(r)
    out = []
    for m in data.get("ses", {}).get("RawMessage", []):
        mail = parse(m["raw_data"])
        mail.update({"id": m["id"], "source": m["source"], "destinations": m["destinations"]})
        out.append(mail)
    for m in data.get("ses", {}).get("Message", []):
        dest = m.get("destinations", {})
        out.append({"id": m["id"], "source": m["source"], "destinations": dest.get("ToAddresses", []), "from": m["source"],
                    "to": dest.get("ToAddresses", []), "cc": dest.get("CcAddresses", []), "bcc": None, "reply_to": [],
                    "subject": m["subject"], "message_id": "", "text": m["body"], "html": None, "content_types": []})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
