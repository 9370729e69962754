"""The README and docs/: every relative link and #anchor resolves, every option is documented, and the README
stays a quick start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgstress.cli import build_parser
from pgstress.compare.command import build_parser as build_compare_parser

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"`+[^`]*`+")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or heading inside one is an example, not a link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text (links and code as their text), lower case, punctuation but
    - and _ removed, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor, a repeated one numbered as GitHub numbers it (-1, -2, ...)."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in _prose(page.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            n = counts.get(base, 0)
            counts[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    targets = []
    for line in _prose(page.read_text(encoding="utf-8")):
        targets += _LINK.findall(_INLINE_CODE.sub("", line))
    return targets


def test_the_slugs_are_githubs() -> None:
    assert slug("The driver's share of the write") == "the-drivers-share-of-the-write"
    assert slug("The JSON record (`--export-json`)") == "the-json-record---export-json"
    assert slug("What PostgreSQL paid (server-side columns)") == "what-postgresql-paid-server-side-columns"
    assert slug("The memory pass (`--memory-trace`)") == "the-memory-pass---memory-trace"
    assert slug("`pgstress compare`") == "pgstress-compare"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not this repository's
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        assert resolved.exists(), f"{page.name}: {target} -> {resolved} does not exist"
        assert REPO in resolved.parents or resolved == REPO, f"{page.name}: {target} leaves the repository"
        if anchor:
            assert resolved.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not markdown"
            assert anchor in anchors(resolved), f"{page.name}: {target}: no heading with that anchor"


def test_the_checker_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\nSee [a](other.md#nowhere) and [b](#title), `[c](not-a-link.md)`.\n\n```\n"
                    "[d](in-code.md)\n```\n", encoding="utf-8")
    (tmp_path / "other.md").write_text("## Somewhere (`x`)\n", encoding="utf-8")
    assert links(page) == ["other.md#nowhere", "#title"]
    assert anchors(tmp_path / "other.md") == {"somewhere-x"}


def _options(parser: object) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings  # type: ignore[attr-defined]
            if option.startswith("--") and option != "--help"}


def test_every_option_is_documented_in_docs() -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES if page.parent.name == "docs")
    options = _options(build_parser()) | _options(build_compare_parser())
    assert {"--mode", "--dry-run", "--version", "--create-dirs", "--report-md"} <= options
    missing = sorted(option for option in options if not re.search(re.escape(f"`{option}") + r"[` =\[,]", text))
    assert missing == []


def test_the_readme_is_a_quick_start() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    for command in ("make run", "make test", "--dsn", "PG_DSN", "--dry-run", "pgstress compare"):
        assert command in text
    linked = {Path(target.partition("#")[0]).name for target in links(REPO / "README.md")}
    assert {page.name for page in PAGES if page.parent.name == "docs"} - linked == {"comparison_excerpt.md"} - linked
