"""The Typer application and the decorator every command uses.

Commands live in their own modules under ``facebench.cli`` and keep heavy imports
(torch, torchvision, ptflops) inside their function bodies so ``facebench --help``
stays instant.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape  # messages may hold brackets, e.g. facebench[dlib]
from typer._click.exceptions import UsageError  # Typer vendors Click under typer._click
from typer.core import TyperCommand

from facebench.errors import FacebenchError
from facebench.fileio import check_output_dir, check_output_file
from facebench.runlock import FolderLock

app = typer.Typer(
    name="facebench",
    help="Benchmark lightweight face-verification models: train, distil, verify, profile, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # Click's plain help: Typer's rich panels print '<bool>' beside every flag
)

console = Console()
err_console = Console(stderr=True)

def command(
    *args: Any, out_dirs: tuple[str, ...] = (), out_files: tuple[str, ...] = (), lock: str | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Typer command that turns FacebenchError into one red line and its exit code (2: bad input).

    Before the command runs, the output paths it names are checked (``fileio.check_output_dir`` for the
    parameters in ``out_dirs``, ``check_output_file`` for ``out_files``; None: not given), and the folder
    parameter ``lock`` names (if given) is locked while it runs (``facebench.runlock``: checked, one run at a time).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> Any:
            bound = signature.bind(*a, **kw)
            bound.apply_defaults()
            given = bound.arguments
            restore = _sigterm_as_interrupt()
            try:
                for name in out_dirs:
                    if given[name] is not None:
                        check_output_dir(given[name], _option(name))
                for name in out_files:
                    if given[name] is not None:
                        check_output_file(given[name], _option(name))
                if lock is None or given[lock] is None:
                    return fn(*a, **kw)
                with FolderLock(given[lock], _option(lock)):
                    return fn(*a, **kw)
            except FacebenchError as exc:
                print_error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as Terminated: locks released, temp files gone
                terminated = isinstance(exc, Terminated)
                print_error(f"{'terminated (SIGTERM)' if terminated else 'interrupted (Ctrl-C)'}: stopped; nothing "
                            "partial was written and the folder's lock is released (a training run resumes from its "
                            "last checkpoint with --resume RUN_DIR, a bench by running it again)")
                raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
            finally:
                restore()

        return app.command(*args, cls=OneLineErrorCommand, **kwargs)(run)

    return decorate


EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM: what shells report for each


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers and ``docker stop`` send), raised in the main thread so that a run ends the way
    Ctrl-C ends it: every ``with`` and ``finally`` on the way out runs (lock, temporary files, worker pools)."""


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Make SIGTERM raise Terminated in this process while a command runs; returns what restores the handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    pid = os.getpid()

    def handle(signum: int, frame: Any) -> None:
        if os.getpid() != pid:  # a forked worker (multiprocessing pool, data loader): die quietly, as by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a repeated SIGTERM must not cut the clean-up short
        # the same SIGTERM sent to the process group ends the data loader's workers too; torch's SIGCHLD handler
        # would then raise "worker killed by signal" tracebacks while the loader shuts down
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handle), signal.getsignal(signal.SIGCHLD)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGCHLD, previous[1])

    return restore


def print_error(message: str) -> None:
    """The one red line a refused input gets on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


class OneLineErrorCommand(TyperCommand):
    """A command whose option errors found by Click (out of range, not a choice, missing, unknown) are one line
    like a FacebenchError's, without Click's usage lines; exit code 2."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """Click's context for ``args``; a UsageError is printed as one line and exits 2."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            print_error(exc.format_message())
            raise typer.Exit(exc.exit_code) from None


def _option(name: str) -> str:
    """A parameter's option spelling: save_annotated -> --save-annotated."""
    return "--" + name.replace("_", "-")
