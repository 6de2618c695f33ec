"""Benchmark `amazon_scientific`: prints a table, writes benchmarks/results/amazon_scientific.json.

Same as `paretorec bench amazon_scientific`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "amazon_scientific", *sys.argv[1:]]))
