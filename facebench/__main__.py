"""Allow ``python -m facebench`` (and ``torchrun -m facebench``)."""

from facebench.cli import main

main()
