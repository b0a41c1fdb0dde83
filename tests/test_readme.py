"""The README's commands: every `levgym` line in its bash blocks (and in the docs' bash and
console blocks) parses, and the README's short ones (annotated `# keys: ...` or
`# prints: ...`) run and print what the README says they print."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from levgym.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# subcommands that take more than ~20 s on 2 cores: run only with the slow tests
SLOW = {"bench", "benchmark", "train"}
# what the README must keep showing a newcomer (so dropping an annotation cannot pass silently)
MUST_RUN = {"--version", "scenarios", "simulate", "stress"}


@dataclass(frozen=True)
class Command:
    line: str
    argv: tuple[str, ...]
    keys: tuple[str, ...] = ()
    prints: str | None = None

    @property
    def name(self) -> str:
        return self.argv[0]


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fenced blocks."""
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)


def readme_commands(text: str) -> list[Command]:
    """Every `levgym ...` line of the bash blocks, with its `# keys:` / `# prints:` annotation."""
    commands = []
    for block in bash_blocks(text):
        block = block.replace("\\\n", " ")  # continuation lines
        for raw in block.splitlines():
            line = raw.strip()
            if not line.startswith("levgym "):
                continue
            command, _, comment = line.partition(" # ")
            argv = tuple(shlex.split(command))[1:]
            keys: tuple[str, ...] = ()
            prints = None
            comment = comment.strip()
            if comment.startswith("keys:"):
                keys = tuple(k.strip() for k in comment[len("keys:") :].split(",") if k.strip())
            elif comment.startswith("prints:"):
                prints = comment[len("prints:") :].strip()
            commands.append(Command(line, argv, keys, prints))
    return commands


def console_commands(text: str) -> list[tuple[str, ...]]:
    """The argv of every `$ levgym ...` line of the ```console blocks (pipes cut off)."""
    out = []
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ levgym "):
                out.append(tuple(shlex.split(line[2:].split(" | ")[0]))[1:])
    return out


COMMANDS = readme_commands(README.read_text())
DOC_PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
DOC_ARGVS = sorted(
    {
        argv
        for page in DOC_PAGES
        for argv in [c.argv for c in readme_commands(page.read_text())]
        + console_commands(page.read_text())
    }
)
SHORT = [c for c in COMMANDS if c.keys or c.prints]


def test_the_readme_names_the_commands_it_runs() -> None:
    assert len(COMMANDS) >= 10, "README.md lost its levgym examples"
    assert {c.argv for c in COMMANDS} <= set(DOC_ARGVS)
    assert MUST_RUN <= {c.name for c in SHORT}, (
        f"README.md's annotated commands must cover {sorted(MUST_RUN)}; "
        f"found {sorted({c.name for c in SHORT})}"
    )
    for c in SHORT:
        if c.keys:
            assert "--json" in c.argv, f"{c.line!r} names keys but does not print JSON"


def test_the_parser_reads_annotations() -> None:
    text = (
        "```bash\nlevgym a --json  # keys: x, y\nlevgym b  # prints: hello there\n"
        "make demo\n```\n```console\nlevgym c\n```\n"
    )
    cmds = readme_commands(text)
    assert [c.argv for c in cmds] == [("a", "--json"), ("b",)]
    assert cmds[0].keys == ("x", "y") and cmds[1].prints == "hello there"
    assert console_commands("```console\n$ levgym d --json | grep x\nout\n```\n") == [
        ("d", "--json")
    ]


@pytest.mark.parametrize("argv", DOC_ARGVS, ids=[" ".join(a)[:60] for a in DOC_ARGVS])
def test_every_documented_command_parses(argv: tuple[str, ...]) -> None:
    parser = build_parser()
    if argv == ("--version",):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(list(argv))
        assert exc.value.code == 0
        return
    args = parser.parse_args(list(argv))
    assert args.command == argv[0]


def _params() -> list:
    out = []
    for c in SHORT:
        marks = [pytest.mark.slow] if c.name in SLOW else []
        out.append(pytest.param(c, id=c.line[:60], marks=marks))
    return out


@pytest.mark.parametrize("command", _params())
def test_readme_short_command_prints_what_it_says(
    command: Command, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # run folders land here, not in the checkout
    try:
        rc = main(list(command.argv))
    except SystemExit as exc:  # --version
        rc = exc.code
    out = capsys.readouterr().out
    assert rc == 0, f"{command.line!r} exited {rc}"
    if command.prints is not None:
        assert command.prints in out, f"{command.line!r} printed {out[:200]!r}"
    if command.keys:
        doc = json.loads(out)
        records = doc if isinstance(doc, list) else [doc]
        assert records, f"{command.line!r} printed an empty list"
        for record in records:
            missing = [k for k in command.keys if k not in record]
            assert not missing, f"{command.line!r}: keys {missing} not in its JSON output"
