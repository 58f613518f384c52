"""The documentation: the MkDocs site in docs/ builds with no warning, and the README stays short with working links."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
pytest.importorskip("material", reason="the docs extra: pip install -e '.[docs]'")


def test_the_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # mkdocs-material's banner
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pages = [p for p in site.rglob("*.html") if p.name != "404.html"]
    assert len(pages) >= 8, sorted(str(p.relative_to(site)) for p in pages)
    # The README's screenshots are part of the site, not only links into tests/.
    for shot in ("run", "sweep", "comparison", "tour"):
        assert (site / "img" / f"{shot}.png").is_file(), shot
    assert 'class="mermaid"' in (site / "contributing" / "index.html").read_text(), "the path of a run, drawn"


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move detail into docs/"


def relative_links(markdown: str) -> list[str]:
    """Targets of the inline links and images, code spans and fenced blocks aside, web and in-page links aside."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def test_every_relative_link_in_the_readme_points_at_a_file():
    links = relative_links(README.read_text())
    assert links, "the README links into docs/"
    missing = [link for link in links if not (REPO / link.split("#")[0]).exists()]
    assert not missing, missing


def test_the_link_check_sees_a_missing_file():
    links = relative_links("[a](docs/nosuch.md) [b](https://example.org) [c](#here) `[d](x.md)` ![e](img/x.png)")
    assert links == ["docs/nosuch.md", "img/x.png"]
    assert not (REPO / "docs/nosuch.md").exists()
