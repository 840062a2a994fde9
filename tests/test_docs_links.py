"""Docs that resolve: every relative link and every ``docs/...`` or ``*.md`` reference points to a file in the repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Markdown files whose links are checked (relative to their own folder).
MARKDOWN = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "benchmarks").glob("*.md")])
#: Files whose ``docs/...`` and ``*.md`` mentions are checked (relative to the repo root or docs/).
SOURCES = sorted(
    p for folder in ("snnprof", "configs", "tests", "benchmarks") for p in (REPO / folder).rglob("*")
    if p.suffix in {".py", ".toml", ".j2", ".md"} and p.is_file()
) + [REPO / "Makefile", REPO / "README.md"]

LINK = re.compile(r"\]\(([^)\s]+)\)")
DOCS_PATH = re.compile(r"(?<![\w/.-])(docs/[\w./-]*\w)")
MD_NAME = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
#: Files of other projects that our notes quote by name (upstream repositories), not files of ours.
UPSTREAM_NAMES = frozenset({"Updates.md", "SKILL.md"})


def _relative_links(path: Path) -> list[str]:
    out = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # URLs and in-page anchors
        out.append(target.split("#", 1)[0])
    return [t for t in out if t and re.search(r"[./]", t)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_markdown_links_resolve(path: Path) -> None:
    missing = [t for t in _relative_links(path) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(REPO)}: links to missing files: {missing}"


def _mentions(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(DOCS_PATH.findall(text)) | {m for m in MD_NAME.findall(text) if m not in UPSTREAM_NAMES}


def _resolves(mention: str, path: Path) -> bool:
    mention = mention.rstrip(".")
    return any((base / mention).exists() for base in (REPO, REPO / "docs", path.parent))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_references_resolve(path: Path) -> None:
    missing = sorted(m for m in _mentions(path) if not _resolves(m, path))
    assert not missing, f"{path.relative_to(REPO)} names files that are not in the repo: {missing}"


def test_the_design_notes_are_in_docs() -> None:
    for name in ("seed_models.md", "energy_reference.md", "peers.md"):
        assert (REPO / "docs" / name).is_file()
