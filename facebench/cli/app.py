"""The Typer application and the decorator every command uses.

Commands live in their own modules under ``facebench.cli`` and keep heavy imports
(torch, torchvision, ptflops) inside their function bodies so ``facebench --help``
stays instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape  # messages may hold brackets, e.g. facebench[dlib]

from facebench.errors import FacebenchError

app = typer.Typer(
    name="facebench",
    help="Benchmark lightweight face-verification models: train, distil, verify, profile, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

console = Console()
err_console = Console(stderr=True)

def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Typer command that turns FacebenchError into one red line and its exit code (2: bad input)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except FacebenchError as exc:
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
                raise typer.Exit(exc.exit_code) from None

        return app.command(*args, **kwargs)(run)

    return decorate
