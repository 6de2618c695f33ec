"""Imports flow one way: no module imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "paretorec"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, lazy: bool) -> set[str]:
    """paretorec modules ``path`` imports (module level only, or also inside functions)."""
    tree = ast.parse(path.read_text())
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    nodes = ast.walk(tree) if lazy else iter(tree.body)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks are not imports at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("paretorec"):
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("paretorec"))
    return found


def _graph(lazy: bool) -> dict[str, set[str]]:
    files = {_module(p): p for p in SRC.rglob("*.py")}
    return {name: _imports(path, lazy=lazy) & set(files) for name, path in files.items()}


def test_the_reported_cycles_are_gone_even_through_lazy_imports() -> None:
    graph = _graph(lazy=True)
    for a, b in (
        ("paretorec.config", "paretorec.multitask._config"),
        ("paretorec.text._encoder", "paretorec.text._templates"),
    ):
        assert not (b in graph[a] and a in graph[b]), f"{a} <-> {b}"
    assert "paretorec.config" not in graph["paretorec.multitask._config"]
    assert "paretorec.text._encoder" not in graph["paretorec.text._templates"]


def test_no_module_level_cycle_between_private_modules() -> None:
    graph = _graph(lazy=False)
    private = {m for m in graph if m.rsplit(".", 1)[-1].startswith("_")}
    for module in private:
        for target in graph[module] & private:
            assert module not in graph[target], f"{module} <-> {target}"
