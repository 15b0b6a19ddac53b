#!/usr/bin/env python3
# verify_evidence.py -- checks an export of ato.export_evidence() without the
# extension or a database (Python 3, standard library only), for whoever
# receives the evidence: every row's hash recomputed along the chain, every
# manifest's hash, positions, head and link to the previous manifest.
#
#   psql -XAt -c "SELECT * FROM ato.export_evidence('<incident>')" > evidence.jsonl
#   python3 verify_evidence.py evidence.jsonl [expected-manifest-hash]
#
# The chain (README, "Evidence"): the hash before row 1 is
# sha256("ato_response evidence " + incident uuid); row n's hash is
# sha256(hash of row n-1 || UTF-8 bytes of its body); a manifest's hash is
# sha256 of the UTF-8 bytes of its body.  Prints "ok: N rows, M manifests,
# last manifest hash H" and exits 0, or names the first line that fails and
# exits 1.  Given the manifest hash recorded when the evidence was preserved,
# it also checks that the export ends with that manifest.

import hashlib
import json
import sys


class Bad(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def verify(lines, expected_hash=None):
    if not lines:
        raise Bad("line 1: the file is empty")
    try:
        records = [json.loads(line) for line in lines]
    except ValueError as e:
        raise Bad("a line is not JSON: %s" % e)
    header = records[0]
    if header.get("format") != "ato_response evidence 1":
        raise Bad("line 1: not an export of ato.export_evidence() (format %r)" % header.get("format"))
    incident = header["incident"]
    genesis = sha256(("ato_response evidence " + incident).encode("utf-8"))
    if header.get("genesis") != genesis.hex():
        raise Bad("line 1: the genesis is not the incident's")

    manifests = [(k + 1, r) for k, r in enumerate(records) if "manifest" in r and "body" in r]
    rows = [(k + 1, r) for k, r in enumerate(records) if "n" in r and "body" in r]
    if len(manifests) + len(rows) != len(records) - 1:
        raise Bad("a line is neither a manifest nor a row")

    # the rows: consecutive positions, each hash recomputed along the chain
    chain = {}
    previous = genesis
    for position, (line, r) in enumerate(rows, start=1):
        if r["n"] != position:
            raise Bad("line %d: row %s where row %d was expected (a row is missing or out of order)"
                      % (line, r["n"], position))
        event = json.loads(r["body"])
        if set(event) != {"event", "table"}:
            raise Bad("line %d: row %d's body is not an event" % (line, position))
        previous = sha256(previous + r["body"].encode("utf-8"))
        if previous.hex() != r["hash"]:
            raise Bad("line %d: row %d does not match its hash (changed, or a row before it was)"
                      % (line, position))
        chain[position] = previous.hex()

    # the manifests: each its body's hash, following the previous one, its
    # rows the next positions, its head the chain's hash at its last row
    first = 1
    previous_manifest = None
    for number, (line, m) in enumerate(manifests, start=1):
        if hashlib.sha256(m["body"].encode("utf-8")).hexdigest() != m["hash"]:
            raise Bad("line %d: manifest %s does not match its hash" % (line, m["manifest"]))
        body = json.loads(m["body"])
        if m["manifest"] != number or body.get("manifest") != number or body.get("incident") != incident:
            raise Bad("line %d: manifest %s is not manifest %d of incident %s" % (line, m["manifest"], number, incident))
        if body.get("previous") != previous_manifest:
            raise Bad("line %d: manifest %d does not follow manifest %d" % (line, number, number - 1))
        if body.get("first_row") != first or not isinstance(body.get("rows"), int) or body["rows"] < 1:
            raise Bad("line %d: manifest %d does not start at row %d" % (line, number, first))
        last = first + body["rows"] - 1
        if chain.get(last) != body.get("head"):
            raise Bad("line %d: manifest %d's head is not the hash of row %d" % (line, number, last))
        previous_manifest = m["hash"]
        first = last + 1
    if first - 1 != len(rows):
        raise Bad("the manifests account for %d rows, the file holds %d" % (first - 1, len(rows)))
    if header.get("rows") != len(rows) or header.get("manifests") != len(manifests):
        raise Bad("line 1: the header counts %s rows and %s manifests, the file holds %d and %d"
                  % (header.get("rows"), header.get("manifests"), len(rows), len(manifests)))
    if header.get("manifest_hash") != previous_manifest:
        raise Bad("line 1: the header's manifest hash is not the last manifest's")
    if expected_hash is not None and expected_hash.lower() != previous_manifest:
        raise Bad("the last manifest's hash is %s, not the %s recorded" % (previous_manifest, expected_hash))
    return len(rows), len(manifests), previous_manifest


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: verify_evidence.py EXPORT.jsonl [EXPECTED-MANIFEST-HASH]", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line != ""]
    try:
        rows, manifests, head = verify(lines, argv[2] if len(argv) == 3 else None)
    except (Bad, KeyError, TypeError) as e:
        print("FAILED: %s" % (e if isinstance(e, Bad) else "a line lacks a field: %r" % e))
        return 1
    print("ok: %d rows, %d manifests, last manifest hash %s" % (rows, manifests, head))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
