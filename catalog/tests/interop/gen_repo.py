#!/usr/bin/env python3
"""Generate a TUF repository with python-tuf (tuf.api.metadata), for interop tests.

usage: gen_repo.py OUT_DIR KEYTYPE VARIANT
  KEYTYPE: ed25519 | ecdsa
  VARIANT: none | bad-signature | target-hash | version-bump | expired-timestamp
           | delegated-bad-signature

Layout (consistent snapshots): OUT_DIR/metadata/{1.root.json, root.json,
1.targets.json, 1.delegated.json, 1.snapshot.json, timestamp.json} and
OUT_DIR/targets/<dirs>/<sha256>.<basename>.
Targets: "files/hello.txt" (top-level, with custom data) and "delegated/fw.bin"
(signed by the delegated role "delegated", paths ["delegated/*"], terminating).
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

HELLO = b"hello from python-tuf\n"
FW = bytes(range(256)) * 4


def new_signer(keytype):
    if keytype == "ed25519":
        return CryptoSigner.generate_ed25519()
    if keytype == "ecdsa":
        return CryptoSigner.generate_ecdsa()
    raise SystemExit(f"unknown keytype {keytype}")


def place_target(out, tf, data):
    digest = tf.hashes["sha256"]
    dirname, _, base = tf.path.rpartition("/")
    path = os.path.join(out, "targets", dirname, f"{digest}.{base}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def flip_signature(path):
    with open(path) as f:
        doc = json.load(f)
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def main():
    out, keytype, variant = sys.argv[1], sys.argv[2], sys.argv[3]
    md_dir = os.path.join(out, "metadata")
    os.makedirs(md_dir, exist_ok=True)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    expires = now + timedelta(days=7)

    signers = {r: new_signer(keytype) for r in ["root", "targets", "snapshot", "timestamp"]}
    deleg_signer = new_signer(keytype)

    root = Root(expires=expires, consistent_snapshot=True)
    for role, s in signers.items():
        root.add_key(s.public_key, role)

    targets = Targets(expires=expires)
    hello = TargetFile.from_data("files/hello.txt", HELLO)
    hello.unrecognized_fields["custom"] = {"hardware_ids": ["1209:0001"], "version": "1.2.3"}
    if variant == "target-hash":
        # Validly signed, but the served file does not match.
        other = TargetFile.from_data("files/hello.txt", b"something else \n")
        hello.hashes = other.hashes
        place_target(out, hello, HELLO)
    else:
        place_target(out, hello, HELLO)
    targets.targets[hello.path] = hello
    key = deleg_signer.public_key
    targets.delegations = Delegations(
        keys={key.keyid: key},
        roles={
            "delegated": DelegatedRole(
                name="delegated",
                keyids=[key.keyid],
                threshold=1,
                terminating=True,
                paths=["delegated/*"],
            )
        },
    )

    delegated = Targets(expires=expires)
    fw = TargetFile.from_data("delegated/fw.bin", FW)
    delegated.targets[fw.path] = fw
    place_target(out, fw, FW)

    snapshot = Snapshot(expires=expires)
    snapshot.meta["targets.json"] = MetaFile(version=1)
    snapshot.meta["delegated.json"] = MetaFile(version=1)

    ts_expires = now - timedelta(days=1) if variant == "expired-timestamp" else expires
    timestamp = Timestamp(expires=ts_expires, snapshot_meta=MetaFile(version=1))

    def write(signed, signer, name):
        md = Metadata(signed)
        md.sign(signer)
        md.to_file(os.path.join(md_dir, name))

    write(root, signers["root"], "1.root.json")
    write(root, signers["root"], "root.json")
    write(targets, signers["targets"], "1.targets.json")
    write(delegated, deleg_signer, "1.delegated.json")
    write(snapshot, signers["snapshot"], "1.snapshot.json")
    write(timestamp, signers["timestamp"], "timestamp.json")

    if variant == "bad-signature":
        flip_signature(os.path.join(md_dir, "timestamp.json"))
    elif variant == "delegated-bad-signature":
        flip_signature(os.path.join(md_dir, "1.delegated.json"))
    elif variant == "version-bump":
        path = os.path.join(md_dir, "timestamp.json")
        with open(path) as f:
            doc = json.load(f)
        doc["signed"]["version"] += 1
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
    elif variant not in ("none", "target-hash", "expired-timestamp"):
        raise SystemExit(f"unknown variant {variant}")


if __name__ == "__main__":
    main()
