"""The documentation: generated blocks are current, the README's links resolve, and the site
builds in strict mode (when mkdocs is installed: the `docs` extra)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from levgym import docs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_committed_generated_blocks_are_current() -> None:
    seen = set()
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        seen.update(docs.blocks_in(text))
        assert docs.render(text, docs.COMMITTED) == text, (
            f"{page.relative_to(ROOT)} is stale: run `python -m levgym.docs --write`"
        )
    assert set(docs.BLOCKS) <= seen, f"blocks no page uses: {set(docs.BLOCKS) - seen}"


def test_render_fills_and_rejects() -> None:
    page = "a\n<!-- gen:results-table -->\nSTALE-BODY\n<!-- /gen:results-table -->\nb\n"
    new = docs.render(page)
    assert "STALE-BODY" not in new and "| `scenario` |" in new and new.endswith("-->\nb\n")
    assert docs.render(new) == new
    with pytest.raises(ValueError, match="unknown generated block 'nope'"):
        docs.render("<!-- gen:nope -->\n<!-- /gen:nope -->")


def test_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text(
        "<!-- gen:scenario-table -->\nstale\n<!-- /gen:scenario-table -->\n"
    )
    assert docs.main(["--docs", str(tmp_path), "--check"]) == 1
    assert docs.main(["--docs", str(tmp_path), "--write"]) == 0
    assert docs.main(["--docs", str(tmp_path), "--check"]) == 0
    assert "| `shock` |" in (tmp_path / "p.md").read_text()


def test_cli_reference_has_every_command() -> None:
    from levgym.cli import COMMANDS

    text = docs.cli_reference()
    for name in COMMANDS:
        assert f"## `levgym {name}`" in text
        assert f"usage: levgym {name}" in text


def test_readme_links_resolve_and_stale_spots_are_gone() -> None:
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        if "://" not in link:
            assert (ROOT / link).exists(), f"README.md links to a missing {link}"
    for stale in ("DESIGN.md", "array-api-compat", "filled in as features land"):
        assert stale not in text
    assert "--backend numpy|torch`" not in text
    assert len(text.splitlines()) <= 250, "README.md should stay a newcomer's page"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed (the docs extra)"
)
def test_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    proc = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = tmp_path / "site"
    # the generated parts are there
    assert "levgym/Governance-v0" in (site / "environments" / "index.html").read_text()
    assert "Action Space" in (site / "environments" / "index.html").read_text()
    assert "usage: levgym stress" in (site / "cli" / "index.html").read_text()
    assert "black_thursday_2020" in (site / "scenarios" / "index.html").read_text()
