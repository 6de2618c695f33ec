"""Benchmark `incremental_ml100k`: prints a table, writes results/incremental_ml100k.json.

Same as `paretorec bench incremental_ml100k`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "incremental_ml100k", *sys.argv[1:]]))
