"""Quick end-to-end benchmark runs write into temporary folders: they may run from a tree
with uncommitted changes (a developer's), which the harness refuses for real results."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paretorec.benchmarks._harness import provenance


@pytest.fixture(autouse=True)
def _quick_runs_may_come_from_a_dirty_tree(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("slow") is None:
        yield
        return
    with provenance(allow_dirty=True):
        yield
