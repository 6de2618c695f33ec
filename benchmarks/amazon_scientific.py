"""Benchmark `amazon_scientific`: prints a table, writes benchmarks/results/amazon_scientific.json.

Same as `paretorec bench amazon_scientific`. Data: --data-dir, else $PARETOREC_DATA_DIR.

`--peers-only [--data-dir DIR] [--quick] [--jobs N]` runs only the RecBole fits the benchmark
needs (about 50 minutes each on one thread; N of them side by side) and keeps them in the
peer-run cache (`$PARETOREC_PEER_CACHE`, default ~/.cache/paretorec/peer_runs), so they can
run ahead, e.g.
`nice -n 19 python benchmarks/amazon_scientific.py --peers-only &`, and across sessions; the
benchmark then reuses them and records where each came from. The benchmark may start while
the fill runs: a fit in progress is waited for, never run twice.
"""

from __future__ import annotations

import sys

from paretorec.cli import app


def _peers_only(argv: list[str]) -> int:
    import argparse

    from paretorec.benchmarks._amazon_scientific import fill_peer_cache

    parser = argparse.ArgumentParser(prog="amazon_scientific.py --peers-only")
    parser.add_argument("--peers-only", action="store_true")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--jobs", type=int, default=1, help="fits side by side, one thread each (default 1)"
    )
    args = parser.parse_args(argv)
    print(fill_peer_cache(data_dir=args.data_dir, quick=args.quick, jobs=args.jobs))
    return 0


if __name__ == "__main__":
    if "--peers-only" in sys.argv[1:]:
        sys.exit(_peers_only(sys.argv[1:]))
    sys.exit(app(["bench", "amazon_scientific", *sys.argv[1:]]))
