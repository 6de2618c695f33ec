"""Benchmark `fullsort`: prints a table and writes benchmarks/results/fullsort.json.

Same as `paretorec bench fullsort`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "fullsort", *sys.argv[1:]]))
