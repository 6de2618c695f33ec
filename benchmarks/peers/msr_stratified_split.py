"""Peer reference: Microsoft Recommenders' released ``python_stratified_split`` on a file.

Runs in the ``.venv-msr`` environment (recommenders 1.2.1), never in paretorec's own; it must
not import paretorec. Reads a CSV with columns ``user,item`` (one row per interaction, in the
order the caller's splitter sees them), splits it with
``python_stratified_split(ratio, filter_by, seed)`` and writes the 0-based row numbers of the
training part (``train_rows``, ascending) to the JSON ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--interactions", required=True, help="CSV with columns user,item")
    p.add_argument("--out", required=True, help="result JSON path")
    p.add_argument("--ratio", type=float, default=0.75)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--filter-by", default="user", choices=["user", "item"])
    p.add_argument("--threads", type=int, default=1, help="unused (the launcher passes it)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import pandas as pd
    import recommenders
    from recommenders.datasets.python_splitters import python_stratified_split

    frame = pd.read_csv(args.interactions)
    frame["row"] = range(len(frame))
    train, test = python_stratified_split(
        frame,
        ratio=args.ratio,
        filter_by=args.filter_by,
        col_user="user",
        col_item="item",
        seed=args.seed,
    )
    result = {
        "recommenders": recommenders.__version__,
        "ratio": args.ratio,
        "seed": args.seed,
        "filter_by": args.filter_by,
        "n_train": len(train),
        "n_test": len(test),
        "train_rows": sorted(int(r) for r in train["row"]),
    }
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"python_stratified_split: {len(train)} train / {len(test)} test rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
