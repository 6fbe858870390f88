"""README and docs/ cannot drift from the CLI: every command line they show parses, every option it names is the
command's own, and every relative link (file and #anchor) resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from facebench.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")
SETUP = "```bash\npip install -e . && facebench profile\npip install -e '.[test]' && pytest\n```"


def _blocks(text: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(text)]


def _facebench_args(line: str) -> list[list[str]]:
    """The facebench invocations in one shell line (after ``&&``, ``-m facebench`` under torchrun), as argv."""
    found = []
    for part in re.split(r"&&|;", line):
        tokens = shlex.split(part, comments=True)
        for start, token in enumerate(tokens):
            if token == "facebench" and (start == 0 or tokens[start - 1] == "-m"):
                found.append(tokens[start + 1 :])
                break
    return found


def block_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every facebench command in a code block, continuation lines joined."""
    commands = []
    for page in PAGES:
        for block in _blocks(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                commands += [(page.name, args) for args in _facebench_args(line)]
    return commands


def inline_commands() -> list[tuple[str, str]]:
    """(page, text) of every inline code span that starts a facebench command (placeholders allowed)."""
    spans = []
    for page in PAGES:
        prose = FENCE.sub("", page.read_text(encoding="utf-8"))
        for match in INLINE.finditer(prose):
            span = " ".join(match.group(1).split())
            for part in re.split(r"&&", span):
                if part.strip().startswith("facebench ") or " -m facebench " in part:
                    spans.append((page.name, part.strip()))
    return spans


def declared_options(command: str) -> set[str]:
    group = typer.main.get_command(app)
    click_command = group.commands[command]  # type: ignore[attr-defined]
    return {opt for param in click_command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help"}


def _command_name(args: list[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


def test_readme_starts_with_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# facebench\n\n" + SETUP), text[:200]


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 597 // 2, len(lines)


def test_every_page_shows_commands() -> None:
    pages = {page for page, _ in block_commands()}
    assert {"README.md", "commands.md", "study.md", "deploying.md"} <= pages
    assert len(block_commands()) >= 30


@pytest.mark.parametrize(("page", "args"), block_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_block_command_parses(page: str, args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"{page}: facebench {' '.join(args)}\n{result.output}"
    command = _command_name(args)
    assert command is not None
    unknown = {a.split("=")[0] for a in args if a.startswith("--")} - declared_options(command)
    assert not unknown, f"{page}: facebench {command} has no {sorted(unknown)}"


@pytest.mark.parametrize(("page", "span"), inline_commands())
def test_inline_command_names_real_options(page: str, span: str) -> None:
    words = span.split(" -m facebench ")[-1].removeprefix("facebench ").split()
    command = words[0]
    if command == "--help":
        return
    group = typer.main.get_command(app)
    assert command in group.commands, f"{page}: `{span}`: no command {command!r}"  # type: ignore[attr-defined]
    unknown = set(OPTION.findall(span)) - declared_options(command)
    assert not unknown, f"{page}: `{span}`: facebench {command} has no {sorted(unknown)}"


def test_benchmark_scripts_named_exist_with_their_options() -> None:
    named = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"python (benchmarks/[\w/]+\.py)([^`\n]*)", text):
            script = ROOT / match.group(1)
            assert script.is_file(), f"{page.name}: {match.group(1)} does not exist"
            source = script.read_text(encoding="utf-8")
            for option in OPTION.findall(match.group(2)):
                assert f'"{option}"' in source, f"{page.name}: {match.group(1)} takes no {option}"
            named += 1
    assert named >= 2


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    prose = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", prose, re.M)}


def test_every_relative_link_resolves() -> None:
    checked = 0
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.relative_to(ROOT)}: link {target} -> {resolved} is missing"
            if anchor:
                assert resolved.suffix == ".md", f"{page.relative_to(ROOT)}: anchor into {resolved.name}"
                assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: no #{anchor} in {resolved.name}"
            checked += 1
    assert checked >= 15


def test_docs_index_links_every_page() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "README.md":
            assert f"]({page.name}" in index, f"docs/README.md does not link {page.name}"
