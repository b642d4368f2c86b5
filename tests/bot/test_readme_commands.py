"""Every `sapa …` command line in README.md and docs/ names sub-commands and flags the CLI really has.

The README is what a new user types. Each command line in a fenced code block (and each `sapa …` code span in
the prose) is read with the README's own notation — `[optional]`, `a|b` alternatives, `pause 1 | resume 1`,
`…` — and walked down the real click tree: every word in a sub-command position must be a sub-command, and
every flag must be an option row of that command's `--help` (a word in its description does not count).
The next drift between the docs and the parser fails here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")


@dataclass(frozen=True)
class Line:
    source: str  # file:line
    text: str  # starting at "sapa"


def _code_block_lines(path: Path) -> list[Line]:
    """Command lines of fenced blocks: `sapa …` or `.venv/bin/sapa …`, backslash continuations joined,
    descriptions (after a run of three spaces, as in README's command table) cut off."""
    found: list[Line] = []
    inside, pending, start = False, "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if pending:
            pending += " " + stripped
        else:
            match = re.match(r"^(?:\$ )?(?:\S*/)?(sapa\s.*)$", stripped)
            if not match:
                continue
            pending, start = match.group(1), number
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        found.append(Line(f"{path.name}:{start}", re.split(r"\s{3,}", pending)[0]))
        pending = ""
    return found


def _code_span_lines(path: Path) -> list[Line]:
    """`sapa …` code spans in the prose (a span may wrap onto the next line)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)  # blocks: read above
    found = []
    for match in re.finditer(r"(?<![`/\w])`(sapa\s[^`]*)`", text):
        number = text.count("\n", 0, match.start()) + 1
        found.append(Line(f"{path.name}:{number}", " ".join(match.group(1).split())))
    return found


LINES = [line for path in DOCS for line in (*_code_block_lines(path), *_code_span_lines(path))]


def _tokens(text: str) -> list[str]:
    text = text.replace("[", " ").replace("]", " ")
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an apostrophe in a trailing description
        words = text.split("#")[0].split()
    return [w for w in words if w not in ("&", "...", "…")]


def _help(command: click.Command, path: list[str]) -> str:
    with click.Context(command, info_name=" ".join(path)) as ctx:
        return command.get_help(ctx)


def _takes_value(command: click.Command, flag: str) -> bool:
    for param in command.params:
        if isinstance(param, click.Option) and flag in (*param.opts, *param.secondary_opts):
            return not param.is_flag and not param.count
    return True  # documented but parsed by hand (broadcast create --message-LANG TEXT)


def check(text: str, root: click.Command = main) -> list[str]:
    """The problems of one command line: unknown sub-commands and flags missing from --help."""
    problems: list[str] = []
    words = _tokens(text)
    assert words and words[0] == "sapa", text
    stack: list[tuple[click.Command, list[str]]] = [(root, ["sapa"])]
    alternatives: list[tuple[click.Command, list[str]]] = []  # `show|adjust|...`: flags may belong to any
    index = 1
    while index < len(words):
        word = words[index]
        command, path = stack[-1]
        flag = word.split("=", 1)[0]
        if word == "|":  # "pause 1 | resume 1": another sub-command of the same group
            if len(stack) > 1:
                stack.pop()
            alternatives = []
        elif FLAG.match(flag):
            owners = alternatives or [(command, path)]
            helps = [_help(c, p) for c, p in owners]
            # An option row of --help ("  --port INTEGER  ..."), not a mention in a docstring.
            row = re.compile(rf"^ +(?:-\w, )?{re.escape(flag)}(?![\w-])", re.M)
            if not any(row.search(h) for h in helps):
                problems.append(f"{' '.join(path)}: {flag} is not in --help")
            elif "=" not in word and _takes_value(owners[0][0], flag) and index + 1 < len(words):
                index += 1  # its value
        elif isinstance(command, click.Group) and not alternatives:
            names = [n for n in word.split("|") if n]
            known = []
            for name in names:
                if name.endswith(("…", "...")):  # "agent-…": some sub-command starting so
                    prefix = name.rstrip(".…")
                    matching = [c for c in command.commands if c.startswith(prefix)]
                    if not matching:
                        problems.append(f"{' '.join(path)}: no sub-command starts with {prefix!r}")
                    known.extend(matching)
                elif name in command.commands:
                    known.append(name)
                else:
                    problems.append(f"{' '.join(path)}: {name!r} is not a sub-command "
                                    f"(it has {', '.join(sorted(command.commands))})")
            if len(names) == 1 and known == names:
                stack.append((command.commands[known[0]], [*path, known[0]]))
            else:
                alternatives = [(command.commands[n], [*path, n]) for n in known]
        # else: an argument (a placeholder such as ID, or an example value)
        index += 1
    return problems


def test_the_docs_have_command_lines_to_check():
    texts = [line.text for line in LINES]
    assert len(LINES) > 40
    assert any("broadcast create" in t and "--message-en" in t for t in texts)
    assert any(t.startswith("sapa simulate telegram") for t in texts)


@pytest.mark.parametrize("line", LINES, ids=[f"{line.source} {line.text[:60]}" for line in LINES])
def test_each_documented_command_line_matches_the_parser(line: Line):
    assert check(line.text) == [], f"{line.source}: {line.text}"


def test_the_checker_catches_drift():
    assert check("sapa broadcast create X --channels sms --message-id hi --message-en hi") == []
    assert check("sapa simulate telegram halo --fake http://127.0.0.1:8099 --url http://127.0.0.1:8010") == []
    assert check("sapa broadcast pause 1 | resume 1 | cancel 1 | status 1 | list") == []
    assert check("sapa broadcast create X --colour red") == ["sapa broadcast create: --colour is not in --help"]
    assert check("sapa broadcast launch 1")[0].startswith("sapa broadcast: 'launch' is not a sub-command")
    assert check("sapa nlu rasa setup|train|deploy")[0].startswith("sapa nlu rasa: 'deploy' is not a sub-command")
    assert check("sapa --config config.walkthrough.yml simulate agent-… --agent U0RINA") == []
    assert check("sapa serve --prot 8010") == ["sapa serve: --prot is not in --help"]

    @click.group()
    def sapa() -> None:
        """Only a docstring mentions --message-id, as `broadcast create` once did."""

    @sapa.command()
    @click.option("--channels")
    def create(channels: str) -> None:
        """Create a draft: --message-id TEXT --message-en TEXT."""

    assert check("sapa create --channels sms --message-id hi", sapa) == ["sapa create: --message-id is not in --help"]


def test_make_run_takes_a_port_and_a_host():
    """`make run PORT=8010` (README's first screen): the port and host reach `sapa serve`; HOST exported by the
    shell (zsh sets it to the machine's name) does not."""
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make on this machine")

    def serve_line(*args: str, **env: str) -> str:
        result = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
        (line,) = [line for line in result.stdout.splitlines() if "sapa serve" in line]
        return " ".join(line.split())

    assert serve_line().endswith("sapa serve")
    assert serve_line("PORT=8010").endswith("sapa serve --port 8010")
    assert serve_line("PORT=8010", "HOST=0.0.0.0").endswith("sapa serve --host 0.0.0.0 --port 8010")
    assert serve_line(HOST="my-laptop").endswith("sapa serve")
