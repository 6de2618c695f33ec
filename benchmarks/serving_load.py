"""Open-loop load on `POST /recommend` (127.0.0.1): p50 / p99 / errors at a rate, then the
highest rate whose p99 stays under 50 ms. Prints JSON.

    python benchmarks/serving_load.py [--bundle PATH] [--rate 100] [--seconds 60]
        [--rates 100,200,400,800] [--step-seconds 15]

Without --bundle the MovieLens-1M bundle of `benchmarks/serving.py` is built (or reused).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console

from paretorec.benchmarks._serving import (
    Server,
    bundle_or_build,
    load_test,
    rate_search,
    served_point,
)
from paretorec.serving import load_bundle

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rates", default="100,150,200,250,300,400,500,600,800,1000")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    args = parser.parse_args()
    path = bundle_or_build(args.bundle, data_dir=args.data_dir)
    bundle = load_bundle(path)
    users, point = bundle.user_ids.tolist(), served_point(bundle)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'feedback.sqlite3'}"
        with Server(path, url) as server:
            load_test(server.port, users, point, 50, 4, seed=99)  # warm-up
            main = load_test(server.port, users, point, args.rate, args.seconds)
            best, steps = rate_search(
                server.port,
                users,
                point,
                rates=[float(r) for r in args.rates.split(",")],
                seconds=args.step_seconds,
                console=Console(),
            )
    report = {
        "point": point,
        "load": main.metrics(),
        "max_rps_p99_under_50ms": best,
        "steps": steps,
    }
    print(json.dumps(report, indent=2))
