"""facebench: benchmark lightweight face-verification models end to end."""

__version__ = "0.1.0"
