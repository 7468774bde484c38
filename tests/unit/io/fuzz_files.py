"""Hypothesis strategies for hostile market files: every format the readers take, with the cells,
lines and bytes real files get wrong.

A file is drawn as a format (its header, or a Binance dump name), rows of cells that are mostly
plausible and sometimes anything (blank, text, extremes, NaN, epoch 0, seconds for milliseconds,
quotes, unicode, too few or too many fields), blank lines, repeated rows (so duplicates occur), and a
container (plain, gzip, a gzip cut short, zip). Tests write it with `write_fuzz_file` and check that the
readers answer every case with records, dead letters and counts that add up, or one line naming the file.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from tapewatch.io.formats import BINANCE_COLUMNS

T0_MS = 1_704_067_200_000
"""2024-01-01T00:00:00Z: plausible timestamps are drawn within a day of it."""

ODD_CELLS = st.sampled_from(
    [
        "",
        " ",
        "abc",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "1e308",
        "1e-320",
        "-1",
        "0",
        "1.5",
        '"',
        '""',
        "'",
        "😀",
        "\u00a0",
        "9" * 40,
        "null",
        "true",
        "2024-13-45",
        "0x1F",
        "1,5",
    ]
)
"""Cells real files get wrong, or that an attacker writes on purpose."""


def _number(low: float, high: float) -> st.SearchStrategy[str]:
    return st.floats(low, high, allow_nan=False).map(lambda v: f"{v:.8g}")


def _epoch_ms() -> st.SearchStrategy[str]:
    plausible = st.integers(T0_MS, T0_MS + 86_400_000).map(str)
    seconds = st.integers(T0_MS // 1000, T0_MS // 1000 + 86_400).map(str)
    micros = st.integers(T0_MS * 1000, (T0_MS + 86_400_000) * 1000).map(str)
    return st.one_of(plausible, plausible, plausible, seconds, micros)


def _iso() -> st.SearchStrategy[str]:
    return st.integers(0, 86_399).map(
        lambda s: f"2024-01-01T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
    )


CELL_KINDS: dict[str, st.SearchStrategy[str]] = {
    "ms": _epoch_ms(),
    "iso": _iso(),
    "date": st.integers(1, 28).map(lambda d: f"2024-02-{d:02d}"),
    "price": _number(1e-6, 1e5),
    "amount": _number(1e-3, 1e6),
    "side": st.sampled_from(["buy", "sell", "BUY", "Sell", "b"]),
    "maker": st.sampled_from(["True", "False", "true", "false", "maybe"]),
    "symbol": st.sampled_from(["FUZ/BTC", "fuz/btc", "FUZBTC", "OTHER/USDT"]),
    "id": st.integers(1, 10**9).map(str),
    "action": st.sampled_from(["new", "cancel", "fill", "modify", "explode"]),
    "book_side": st.sampled_from(["bid", "ask", "buy"]),
    "venue": st.sampled_from(["fuzzex", "binance", ""]),
    "text": st.text(max_size=5),
}
"""How each column's plausible values are drawn."""


@dataclass(frozen=True)
class Layout:
    """One file format as the fuzzer writes it: its file name, header (None: a headerless dump) and column kinds."""

    name: str
    header: tuple[str, ...] | None
    cells: tuple[str, ...]


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "fuzz.csv",
        ("symbol", "timestamp", "datetime", "side", "price", "amount"),
        ("symbol", "ms", "text", "side", "price", "amount"),
    ),
    Layout(
        "fuzz_ids.csv",
        ("symbol", "timestamp", "id", "side", "price", "amount", "venue"),
        ("symbol", "ms", "id", "side", "price", "amount", "venue"),
    ),
    Layout(
        "FUZBTC-trades-2024-01-01.csv",
        None,
        ("id", "price", "amount", "amount", "ms", "maker", "maker"),
    ),
    Layout(
        "FUZBTC-aggTrades-2024-01-01.csv",
        BINANCE_COLUMNS["binance-aggtrades"][:7],
        ("id", "price", "amount", "id", "id", "ms", "maker"),
    ),
    Layout(
        "FUZBTC-1m-2024-01-01.csv",
        None,
        ("ms", "price", "price", "price", "price", "amount", "ms", "amount", "id", "amount", "amount", "id"),
    ),
    Layout(
        "bars.csv",
        ("date", "open", "high", "low", "close", "volume"),
        ("date",) + ("price",) * 4 + ("amount",),
    ),
    Layout(
        "orders.csv",
        ("ts", "symbol", "order_id", "side", "price", "amount", "action", "account"),
        ("iso", "symbol", "id", "side", "price", "amount", "action", "text"),
    ),
    Layout(
        "book.csv",
        ("ts", "symbol", "side", "price", "amount"),
        ("ms", "symbol", "book_side", "price", "amount"),
    ),
)


@dataclass(frozen=True)
class FuzzFile:
    """A drawn file: its layout, its lines (header included) and how it is packed."""

    layout: Layout
    lines: tuple[str, ...]
    container: str
    """plain, gzip, cut (a gzip cut in half) or zip."""

    @property
    def data_lines(self) -> int:
        """Lines under the header, blank ones included."""
        return len(self.lines) - (self.layout.header is not None)


@st.composite
def _row(draw: st.DrawFn, layout: Layout) -> str:
    """Half the rows plausible throughout (so records are kept and repeats removed), half hostile."""
    if draw(st.booleans()):
        return ",".join(_quoted(draw(CELL_KINDS[kind])) for kind in layout.cells)
    cells = [
        draw(st.one_of(CELL_KINDS[kind], CELL_KINDS[kind], CELL_KINDS[kind], ODD_CELLS))
        for kind in layout.cells
    ]
    shape = draw(st.sampled_from(["whole", "whole", "whole", "short", "long"]))
    if shape == "short":
        cells = cells[: draw(st.integers(0, len(cells) - 1))]
    elif shape == "long":
        cells.append(draw(ODD_CELLS))
    return ",".join(_quoted(cell) for cell in cells)


def _quoted(cell: str) -> str:
    """A cell as a CSV writer would write it (quotes around separators, quotes and line ends)."""
    if any(c in cell for c in ',"\n\r'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def fuzz_files(draw: st.DrawFn) -> FuzzFile:
    """A hostile market file of any format."""
    layout = draw(st.sampled_from(LAYOUTS))
    pool = draw(st.lists(_row(layout), min_size=1, max_size=12))
    rows = draw(st.lists(st.one_of(st.sampled_from(pool), st.just("")), max_size=40))
    header = (",".join(layout.header),) if layout.header is not None else ()
    container = draw(st.sampled_from(["plain", "plain", "gzip", "gzip", "cut", "zip"]))
    return FuzzFile(layout, (*header, *rows), container)


def write_fuzz_file(drawn: FuzzFile, folder: Path) -> Path:
    """Write the drawn file into `folder` (packed as drawn) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(drawn.lines) + "\n").encode()
    path = folder / drawn.layout.name
    if drawn.container in ("gzip", "cut"):
        packed = gzip.compress(data)
        path = path.with_name(path.name + ".gz")
        path.write_bytes(packed[: max(10, len(packed) // 2)] if drawn.container == "cut" else packed)
    elif drawn.container == "zip":
        path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(drawn.layout.name, data)
    else:
        path.write_bytes(data)
    return path


DEPTH = Layout("FUZBTC-depth.jsonl", None, ())
"""Binance diff-depth captures: one JSON message a line."""


@st.composite
def depth_files(draw: st.DrawFn) -> FuzzFile:
    """A diff-depth capture with malformed messages, levels and times among good ones."""
    lines = []
    for update in range(draw(st.integers(0, 8))):
        message = {
            "e": "depthUpdate",
            "E": int(draw(CELL_KINDS["ms"])) if draw(st.booleans()) else draw(ODD_CELLS),
            "s": "FUZBTC",
            "U": update * 10 + 1,
            "u": update * 10 + 9,
            "b": [[draw(st.one_of(CELL_KINDS["price"], ODD_CELLS)), draw(CELL_KINDS["amount"])]],
            "a": draw(
                st.lists(
                    st.tuples(CELL_KINDS["price"], st.one_of(CELL_KINDS["amount"], ODD_CELLS)), max_size=3
                )
            ),
        }
        text = json.dumps(message)
        lines.append(text if draw(st.integers(0, 5)) else text[: draw(st.integers(0, len(text) - 1))])
    container = draw(st.sampled_from(["plain", "gzip", "cut"]))
    return FuzzFile(DEPTH, tuple(lines), container)
