"""Benchmark `serving`: load, hot reload, crash safety, fuzzing and explanation fidelity of the
HTTP service on 127.0.0.1; writes benchmarks/results/serving.json.

Same as `paretorec bench serving`, plus `--cycles` (crash cycles, default 200; 5 with --quick)
and `--bundle` (serve this bundle instead of building the MovieLens-1M one). Data:
--data-dir, else $PARETOREC_DATA_DIR. Run it on a quiet machine: the timings are the result.
"""

from __future__ import annotations

import argparse

from paretorec.benchmarks._serving import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", default="benchmarks/results")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cycles", type=int, default=None, help="crash cycles (default 200)")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args()
    run(
        args.output_dir,
        data_dir=args.data_dir,
        quick=args.quick,
        crash_cycles=args.cycles,
        bundle=args.bundle,
    )
