"""The command line's parser: built for one command at a time, it parses as the whole does."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from recipegen import cli


def _commands(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return tuple(sub.choices)


def test_the_command_list_is_the_parsers() -> None:
    assert _commands(cli.build_parser()) == cli.COMMANDS
    assert _commands(cli.build_parser("install")) == cli.COMMANDS  # all listed in --help


@pytest.mark.parametrize("argv", [
    ["install", "httpx==0.28.1", "-p", "/tmp/env", "-y", "--jobs", "3", "--json", "-c", "a",
     "-c", "b", "--map", "x=y", "--refresh"],
    ["build", "--locked", "--lock", "l.json", "-q"],
    ["generate", "rich", "--flavour", "conda-forge", "--deps", "--maintainer", "me"],
    ["remove", "six", "--prune", "--dry-run", "-p", "/tmp/env"],
    ["protect", "--off", "-p", "/tmp/env"],
    ["lint", "recipes", "--json"],
    ["seed", "--channel", "/tmp/seed"],
])
def test_one_commands_parser_parses_like_the_whole(argv: list[str]) -> None:
    assert vars(cli.build_parser(argv[0]).parse_args(argv)) == \
        vars(cli.build_parser().parse_args(argv))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recipegen", *args], capture_output=True,
                          text=True, timeout=60)


def test_another_commands_options_are_refused() -> None:
    done = _run("install", "--flavour", "local")  # an option of generate's
    assert done.returncode == 2
    assert "unrecognized arguments: --flavour" in done.stderr


def test_help_lists_every_command() -> None:
    done = _run("--help")
    assert done.returncode == 0
    assert all(name in done.stdout for name in cli.COMMANDS)
    done = _run("install", "--help")
    assert done.returncode == 0 and "--refresh" in done.stdout
