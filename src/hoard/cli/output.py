"""CLI output: human text or `--json`, progress bars on stderr, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


class Ctx:
    """What every command gets: global options and how to print."""

    def __init__(self, data_dir: str | None, config: str | None, as_json: bool, api: str | None = None) -> None:
        self.data_dir = data_dir
        self.config = config
        self.json = as_json
        self.api = api

    def emit(self, value: Any, text: str | None = None) -> None:
        """Print `value` as JSON with --json, else `text` (or a readable form of value)."""
        if self.json:
            click.echo(json.dumps(value, indent=None, sort_keys=True, default=str))
        elif text is not None:
            click.echo(text)
        elif isinstance(value, (dict, list)):
            click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
        else:
            click.echo(str(value))

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Any]:
        """A byte progress bar on stderr (hidden with --json or when stderr is not a terminal)."""
        from rich.console import Console  # rich loads only when a bar is shown
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        stderr = Console(stderr=True)
        enabled = not self.json and stderr.is_terminal
        bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       TimeRemainingColumn(), console=stderr, transient=True, disable=not enabled)
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)


def human_size(n: float) -> str:
    """Bytes for people: 0 B, 1.5 KiB, 20.0 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def printable(text: str) -> str:
    """`text` with control characters escaped (\\n, \\x1b, ...), so a name cannot move the
    cursor, recolour the terminal or break a table's lines."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def print_table(columns: list[str], rows: list[list[str]], right: tuple[str, ...] = ()) -> None:
    """A rich table on stdout: fitted to a terminal, at full width into a pipe or file (never
    cut off), without borders so it stays easy to grep. Cells are plain text (no rich markup;
    control characters escaped, line breaks kept)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=100_000, color_system=None)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text("\n".join(printable(line) for line in cell.split("\n"))) for cell in row))
    console.print(table)


def fail(message: str, exit_code: int, as_json: bool, code: str = "error") -> None:
    """Print one clear line (or a JSON error object) and exit."""
    if as_json:
        click.echo(json.dumps({"error": {"code": code, "message": message}}), err=True)
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)
