"""Write result rows as CSV, Markdown and JSON side by side, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from facebench.fileio import atomic_path, write_json_atomic, write_text_atomic


def markdown_table(rows: Sequence[dict[str, Any]], floatfmt: str = ".4g") -> str:
    """Rows as a GitHub-flavoured Markdown table (NaN shown as 'n/a')."""
    frame = pd.DataFrame(list(rows))
    frame = frame.astype(object).where(frame.notna(), None)  # tabulate's missingval replaces None, not NaN
    return frame.to_markdown(index=False, floatfmt=floatfmt, missingval="n/a")


def write_tables(
    rows: Sequence[dict[str, Any]], out_dir: str | Path, stem: str, *, title: str, meta: dict[str, Any]
) -> list[Path]:
    """Write ``stem.csv``, ``stem.md`` (title, settings, table) and ``stem.json`` ({meta, rows}) into ``out_dir``."""
    out = Path(out_dir)
    paths = [out / f"{stem}.csv", out / f"{stem}.md", out / f"{stem}.json"]
    with atomic_path(paths[0]) as tmp:
        pd.DataFrame(list(rows)).to_csv(tmp, index=False)
    settings = "\n".join(f"- {key}: {value}" for key, value in meta.items() if not isinstance(value, (dict, list)))
    write_text_atomic(paths[1], f"# {title}\n\n{settings}\n\n{markdown_table(rows)}\n")
    write_json_atomic(paths[2], {"meta": meta, "rows": list(rows)})
    return paths
