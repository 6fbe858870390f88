"""Markdown tables of already formatted cells (numbers are shown exactly as given, not re-parsed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def text_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a GitHub-flavoured pipe table; cells are printed as their ``str``, so '0.20' stays '0.20'."""
    return pd.DataFrame(list(rows)).to_markdown(index=False, disable_numparse=True)
