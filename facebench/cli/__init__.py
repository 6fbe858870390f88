"""The ``facebench`` command line: one module per command, registered on import."""

from facebench.cli import (  # noqa: F401  (registers the commands)
    align_cmd,
    bench_cmd,
    check_cmd,
    distill_cmd,
    export_cmd,
    models_cmd,
    pack_cmd,
    pairs_cmd,
    profile_cmd,
    report_cmd,
    train_cmd,
    verify_cmd,
)
from facebench.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()
