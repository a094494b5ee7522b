"""How the client verbs show things: tables, ages, sizes and progress bars (tqdm, on
stderr, so that stdout keeps only the result)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
import msgspec

if TYPE_CHECKING:
    from tqdm import tqdm


def progress(total: int | None, unit: str, desc: str, quiet: bool,
             scale: bool = False) -> tqdm:
    """A progress bar on stderr (shown even when stderr is not a terminal, unless quiet)."""
    from tqdm import tqdm  # only the verbs that show one load it

    return tqdm(total=total or None, unit=unit, unit_scale=scale, unit_divisor=1024,
                desc=desc, file=sys.stderr, disable=quiet, dynamic_ncols=True,
                mininterval=0.3, leave=True)


def age(created_at: Any, now: float | None = None) -> str:
    """How long ago, in one short unit: 45s, 12m, 5h, 3d, 4mo, 2y."""
    if not isinstance(created_at, (int, float)):
        return "?"
    seconds = max(0, int((now or time.time()) - created_at))
    for limit, div, unit in ((60, 1, "s"), (3600, 60, "m"), (86400, 3600, "h"),
                             (86400 * 60, 86400, "d"), (86400 * 730, 86400 * 30, "mo")):
        if seconds < limit:
            return f"{seconds // div}{unit}"
    return f"{seconds // (86400 * 365)}y"


def size(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
          stretch: int | None = None) -> None:
    """Columns padded to their widest cell; column `stretch` (the content) is cut to what
    the terminal leaves it."""
    cells = [[one_line(str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    if stretch is not None:
        room = shutil.get_terminal_size((120, 24)).columns - sum(
            w + 2 for i, w in enumerate(widths) if i != stretch)
        widths[stretch] = max(20, min(widths[stretch], room))
        for row in cells:
            if len(row[stretch]) > widths[stretch]:
                row[stretch] = row[stretch][:widths[stretch] - 1] + "…"

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line(list(headers)))
    click.echo(line(["-" * w for w in widths]))
    for row in cells:
        click.echo(line(row))


def as_json(value: Any) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())
