"""Commands whose module is imported only when one runs or shows its own ``--help``.

``vocalborn --help`` lists every command with its docstring, read from the module's source (no
import), so each command module can import what it needs at its top (the database, Redis, the
event consumers) without ``vocalborn --help`` or another command paying for it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from functools import cache
from typing import Any

import typer
import typer.core
import typer.main
from typer import _click as click  # typer 0.29 carries its own click: its types, not click's

# A command's name -> (its module, its function).
Table = dict[str, tuple[str, str]]


@cache
def _docstrings(module: str) -> dict[str, str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {
        node.name: ast.get_docstring(node) or ""
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


class LazyGroup(typer.core.TyperGroup):
    """A typer group with, after its own commands, the ``lazy`` ones (``lazy_group``)."""

    lazy: Table = {}
    listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, function = self.lazy[cmd_name]
        if self.listing:  # a line of the group's --help: the name and the docstring suffice
            return typer.core.TyperCommand(cmd_name, help=_docstrings(module)[function])
        one = typer.Typer(add_completion=False)
        one.command(cmd_name)(getattr(importlib.import_module(module), function))
        return typer.main.get_command(one)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


def lazy_group(table: Table) -> type[LazyGroup]:
    """The group class to give ``typer.Typer(cls=...)`` for these commands."""

    class Group(LazyGroup):
        lazy = table

    return Group


def docstring(module: str, function: str) -> Any:
    """The docstring the listing shows (tests compare it with the imported function's)."""
    return _docstrings(module)[function]
