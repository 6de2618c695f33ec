"""Crash safety of `/feedback`: N cycles of (start the server, stream feedback posts, SIGKILL it
at a random moment), then check that every acknowledged event is stored exactly once.
Prints JSON with `acked_lost` and `duplicates`.

    python benchmarks/serving_crash.py [--bundle PATH] [--cycles 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json

from paretorec.benchmarks._serving import bundle_or_build, crash_test

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="runs/serving_bench")
    args = parser.parse_args()
    path = bundle_or_build(args.bundle, data_dir=args.data_dir)
    print(json.dumps(crash_test(path, args.work_dir, cycles=args.cycles, seed=args.seed), indent=2))
