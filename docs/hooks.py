"""MkDocs hook: fill each page's generated blocks (levgym.docs) and point links to the
repository's top-level Markdown files at their pages on the site."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# document this checkout, whatever levgym the environment has installed
sys.path.insert(0, str(ROOT))

from levgym.docs import render  # noqa: E402

# top-level files the site includes as pages (docs/<page> includes the file with a snippet)
TOP_LEVEL = {"../ASSUMPTIONS.md": "assumptions.md", "../BENCHMARK.md": "benchmark-results.md"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = render(markdown)
    for target, name in TOP_LEVEL.items():
        if page.file.src_uri != name:
            markdown = markdown.replace(f"]({target}", f"]({name}")
    return markdown
