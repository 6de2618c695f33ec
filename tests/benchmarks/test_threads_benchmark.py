"""The threads benchmark's bookkeeping: medians per setting, the busy-core ratio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from paretorec.benchmarks import BENCHMARKS
from paretorec.benchmarks import _threads as B
from paretorec.benchmarks._harness import provenance


def test_summary_is_the_median_epoch_time_of_each_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[Any, bool]] = []
    epoch_times = {(None, False): [1.0, 1.2, 1.1], (None, True): [9.0, 7.0, 8.0], (1, True): [2.0]}

    def fake(threads: int | None, epochs: int, data_dir: Any, burner: bool) -> dict[str, Any]:
        calls.append((threads, burner))
        return {"threads": threads or 2, "epoch_seconds": epoch_times[(threads, burner)]}

    monkeypatch.setattr(B, "_timed", fake)
    with provenance(allow_dirty=True):  # the bookkeeping, not a result
        result = B.run(tmp_path, repeats=2, epochs=3)
    # settings alternate within each repeat
    assert calls == [(None, False), (None, True), (1, True)] * 2
    summary = result["summary"]
    assert summary["mmoe_seconds_per_epoch_default_quiet"] == pytest.approx(1.1)
    assert summary["mmoe_seconds_per_epoch_default_busy"] == pytest.approx(8.0)
    assert summary["mmoe_seconds_per_epoch_threads1_busy"] == pytest.approx(2.0)
    assert summary["busy_speedup_threads1_vs_default"] == pytest.approx(4.0)
    saved = json.loads((tmp_path / "threads.json").read_text())
    assert saved["summary"] == summary
    assert "threads" in BENCHMARKS
