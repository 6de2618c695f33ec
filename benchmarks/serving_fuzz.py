"""Fuzz the service from its own schema: schemathesis against `/openapi.json` on 127.0.0.1
(admin token set, so the guarded endpoints are reached too). Prints JSON with the count of
5xx answers and examples.

    python benchmarks/serving_fuzz.py [--bundle PATH] [--examples 100] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paretorec.benchmarks._serving import Server, bundle_or_build, fuzz_test

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--max-seconds", type=int, default=600)
    parser.add_argument("--work-dir", default="runs/serving_bench")
    args = parser.parse_args()
    path = bundle_or_build(args.bundle, data_dir=args.data_dir)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(work / 'fuzz_feedback.sqlite3').resolve()}"
    with Server(path, url, log=work / "fuzz_server.log") as server:
        result = fuzz_test(
            server.port, work, max_examples=args.examples, max_seconds=args.max_seconds
        )
    print(json.dumps(result, indent=2))
