"""Benchmark `online_simulation`: prints a table, writes benchmarks/results/online_simulation.json.

Same as `paretorec bench online_simulation`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "online_simulation", *sys.argv[1:]]))
