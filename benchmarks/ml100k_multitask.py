"""Benchmark `ml100k_multitask`: prints a table and writes benchmarks/results/ml100k_multitask.json.

Same as `paretorec bench ml100k_multitask`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "ml100k_multitask", *sys.argv[1:]]))
