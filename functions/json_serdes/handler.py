"""json_serdes: parses the shipped JSON document (app/data.json, a few hundred KiB)
and serialises it again, `rounds` times. Answers the sizes and a SHA-256 of the
re-serialised bytes.

Payload: {"rounds": R} (default 1).
"""
import hashlib
import json
import os

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.json")


def handle(event):
    rounds = int(event.get("rounds", 1))
    with open(DATA, "rb") as f:
        raw = f.read()
    doc = out = None
    for _ in range(rounds):
        doc = json.loads(raw)
        out = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    out = out.encode("utf-8")
    return {
        "rounds": rounds,
        "input_bytes": len(raw),
        "output_bytes": len(out),
        "records": len(doc["records"]),
        "sha256": hashlib.sha256(out).hexdigest(),
    }
