"""The package's layers import one way: outputs and the comparison read rows, run records and the run's context,
never the database layer; the measuring side (run/, db/) knows no output."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "pgstress"
# (folder whose modules import, a package they must not import)
FORBIDDEN = [
    ("output", "pgstress.db"),
    ("compare", "pgstress.db"),
    ("run", "pgstress.output"),
    ("db", "pgstress.output"),
    ("db", "pgstress.run"),
]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("folder,forbidden", FORBIDDEN, ids=[f"{f}-not-{p}" for f, p in FORBIDDEN])
def test_layers_import_one_way(folder: str, forbidden: str) -> None:
    offenders = [f"{path.relative_to(REPO)} imports {module}"
                 for path in sorted((PACKAGE / folder).rglob("*.py"))
                 for module in sorted(imported_modules(path))
                 if module == forbidden or module.startswith(forbidden + ".")]
    assert offenders == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from pgstress.db.server import probe\n    return probe\n")
    assert "pgstress.db.server" in imported_modules(sample)
