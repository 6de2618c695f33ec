"""Benchmark `movielens100k`: prints a table and writes benchmarks/results/movielens100k.json.

Same as `paretorec bench movielens100k`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "movielens100k", *sys.argv[1:]]))
