"""Benchmark `threads`: prints a table and writes benchmarks/results/threads.json.

Same as `paretorec bench threads`. Data: --data-dir, else $PARETOREC_DATA_DIR.
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "threads", *sys.argv[1:]]))
