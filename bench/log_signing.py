"""Record signing and verification per log key type (Ed25519, hoard's; EC P-256, GDP's), as JSON.

    python bench/log_signing.py [--records N] [--size BYTES]

Measures `hoard.logs.records.Signer.sign` and `Verifier.verify` on one thread, for records of
`--size` bytes in a log with typical metadata: what a writer pays per append and a host or
reader per record received.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from hoard.logs.keys import generate_key
from hoard.logs.metadata import CID, CTM, Metadata, format_ctm, metadata_name
from hoard.logs.records import ZERO_HASH, Signer, Verifier


def measure(key_type: str, records: int, size: int) -> dict[str, object]:
    md = Metadata([(CTM, format_ctm(time.time_ns())), (CID, "bench@localhost")])
    name = metadata_name(md)
    signer = Signer(generate_key(key_type), md)
    verifier = Verifier(signer.public_key, md)
    data = os.urandom(size)
    ts = time.time_ns()
    start = time.perf_counter()
    datums = [signer.sign(name, i, ts + i, data, ZERO_HASH) for i in range(1, records + 1)]
    signed = time.perf_counter() - start
    start = time.perf_counter()
    for datum in datums:
        verifier.verify(name, datum)
    verified = time.perf_counter() - start
    return {"key_type": key_type, "records": records, "size": size,
            "sign_per_s": round(records / signed), "verify_per_s": round(records / verified),
            "sign_us": round(signed / records * 1e6, 1), "verify_us": round(verified / records * 1e6, 1),
            "sig_bytes": len(datums[0].sig)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    print(json.dumps([measure(kind, args.records, args.size) for kind in ("ed25519", "ec")], indent=1))


if __name__ == "__main__":
    main()
