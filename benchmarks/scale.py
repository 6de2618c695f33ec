"""Benchmark `scale`: prints a table and writes benchmarks/results/scale.json.

Same as `paretorec bench scale`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "scale", *sys.argv[1:]]))
