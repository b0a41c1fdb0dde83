"""The scenario table of docs/scenarios.md, generated from the registry: ``python -m levgym.scenarios.docs``."""

from __future__ import annotations

from .base import all_scenarios


def markdown_table() -> str:
    """A Markdown table of every registered scenario: name, kind, description, source."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| name | kind | description | source |", "|---|---|---|---|"]
    for s in all_scenarios():
        lines.append(f"| `{s.name}` | {s.kind} | {cell(s.description)} | {cell(s.source)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    from .. import scenarios  # noqa: F401  (registers everything)

    print(markdown_table())
