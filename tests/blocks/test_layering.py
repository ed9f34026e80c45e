"""blocks/ turns data into Block Kit: it imports only models/ and itself, never services/, handlers/ or
adapters/ (what both blocks and services need, like the weekday names, lives in models/)."""

from __future__ import annotations

import ast
from pathlib import Path

BLOCKS = Path(__file__).resolve().parents[2] / "blocks"
OUR_PACKAGES = {"adapters", "blocks", "config", "handlers", "jobs", "models", "services", "bot"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    return {name.split(".")[0] for name in names}


def test_blocks_import_only_models_and_blocks() -> None:
    modules = list(BLOCKS.glob("*.py"))
    assert modules
    outside = {p.name: sorted(_imports(p) & OUR_PACKAGES - {"models", "blocks"}) for p in modules}
    assert {name: used for name, used in outside.items() if used} == {}
