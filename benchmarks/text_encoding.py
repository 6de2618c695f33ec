"""Benchmark `text_encoding`: prints a table and writes benchmarks/results/text_encoding.json.

Same as `paretorec bench text_encoding`: item-text encoding speed of the default language
model, PyTorch fp32 vs ONNX Runtime dynamic int8 (texts per second, cosine agreement).
Data: --data-dir, else $PARETOREC_DATA_DIR. `--quick` is a smoke run (< 60 s).
"""

from __future__ import annotations

import sys

from paretorec.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "text_encoding", *sys.argv[1:]]))
