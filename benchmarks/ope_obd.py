"""Benchmark `ope_obd`: prints a table and writes benchmarks/results/ope_obd.json.

Same as `paretorec bench ope_obd`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "ope_obd", *sys.argv[1:]]))
