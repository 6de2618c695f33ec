"""Benchmark `simulator_funnel`: prints a table and writes benchmarks/results/simulator_funnel.json.

Same as `paretorec bench simulator_funnel`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "simulator_funnel", *sys.argv[1:]]))
