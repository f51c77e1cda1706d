"""The README and docs/: links resolve, quoted study names exist, the notebooks table names real parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import notebook_parameters

ROOT = Path(__file__).parent.parent
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STUDIES = ROOT / "docs" / "training-studies.md"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces ``-``.

    >>> github_anchor("The validation cells train too (`n_validation = 0`)")
    'the-validation-cells-train-too-n_validation--0'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path: Path) -> list[str]:
    """The text of every ``#``-heading of a Markdown file."""
    return re.findall(r"^#{1,6} (.+?)\s*$", path.read_text(), re.MULTILINE)


def relative_links(path: Path) -> list[str]:
    """Targets of the Markdown links of a file that are neither web addresses nor mail."""
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", path.read_text()) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_a_heading(path):
    assert relative_links(path) or path.name != "README.md", "the README links to docs/"
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        destination = (path.parent / file).resolve() if file else path
        assert destination.exists(), f"{path.name}: {target} names no file"
        if anchor:
            anchors = {github_anchor(h) for h in headings(destination)}
            assert anchor in anchors, f"{path.name}: no heading of {destination.name} has the anchor #{anchor}"


def _quoted_after(text: str, marker: str) -> list[str]:
    """Quoted names that follow ``marker`` in prose or comments, joined over line breaks and comment marks."""
    flat = re.sub(r"\s*\n\s*(#|\*)?\s*", " ", text)
    names = []
    for match in re.finditer(re.escape(marker) + r"`*,?\s*\(?((?:\"[^\"]+\",?\s*)+)", flat):
        names += re.findall(r"\"([^\"]+)\"", match.group(1))
    return names


def test_sources_quote_studies_that_exist():
    studies = set(headings(STUDIES))
    sources = [*(ROOT / "notebooks").glob("[0-9][0-9]_*.py"), *(ROOT / "hforge_nb").rglob("*.py"),
               *(ROOT / "profiles").glob("*.toml")]
    quoted = {(p.name, name) for p in sources for name in _quoted_after(p.read_text(), "training-studies.md")}
    assert quoted, "notebooks and profiles point to the studies"
    missing = sorted((file, name) for file, name in quoted if not any(h.startswith(name) for h in studies))
    assert not missing, f"no study of docs/training-studies.md is called {missing}"


def test_the_readme_notebook_table_names_real_parameters():
    rows = re.findall(r"^\| `(\d\d_\w+)` \|.*\| (.+) \|$", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert len(rows) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for stem, column in rows:
        named = set(re.findall(r"`([a-z_][a-z0-9_]*)`", column))
        unknown = named - notebook_parameters(stem)
        assert not unknown, f"README lists {sorted(unknown)} as parameters of {stem}"
