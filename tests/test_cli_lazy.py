"""`vocalborn --help` lists every command without importing its module (cli/lazy.py), and what it
lists is what the command itself says."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import typer.main

from vocalborn import cli
from vocalborn.cli import lazy

TABLES = [cli.COMMANDS, cli.USERS, cli.MAIL, cli.STORAGE, cli.TASKS, cli.EVENTS]


def test_the_listing_shows_each_command_s_own_docstring() -> None:
    for table in TABLES:
        for name, (module, function) in table.items():
            real = getattr(__import__(module, fromlist=[function]), function)
            assert lazy.docstring(module, function) == inspect.getdoc(real), name


def test_each_command_resolves_to_its_function() -> None:
    group = typer.main.get_command(cli.app)
    ctx = group.make_context("vocalborn", ["--help"], resilient_parsing=True)
    for name, (module, function) in cli.COMMANDS.items():
        command = group.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.callback.__module__ == module and command.callback.__name__ == function


@pytest.mark.worker  # a fresh Python
def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from vocalborn.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('vocalborn.cli.', 'vocalborn.db', 'sqlalchemy', 'redis', 'celery'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    assert loaded == "['vocalborn.cli.common', 'vocalborn.cli.lazy']", loaded
