"""Cutting a file into batches of rows: each batch parses exactly as its rows do in the whole file, a
file read in small batches gives what it gives read whole, and the thread reading ahead stops with its
caller and hands its errors over."""

from __future__ import annotations

import gzip
import io
import threading

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tapewatch.io import formats, readers
from tapewatch.io.formats import read_ahead, row_chunks
from tapewatch.io.readers import read_inputs

LINES = st.lists(
    st.one_of(
        st.just(""),  # a blank line
        st.just('"a\nb",1'),  # a quoted field holding a newline
        st.just('"x""y",2'),  # an escaped quote
        st.just(",,"),
        st.integers(0, 10**6).map(lambda n: f"{n},{n * 2}"),
    ),
    max_size=60,
)


def _parse(data: bytes) -> pl.DataFrame:
    options = {"infer_schema": False, "truncate_ragged_lines": True, "raise_if_empty": False}
    return pl.read_csv(b"a,b\n" + data, **options)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(LINES, st.booleans(), st.integers(1, 7), st.sampled_from([1, 2, 3, 7, 64, 1 << 20]))
def test_batches_of_rows_parse_as_the_whole_file(lines, final_newline, rows, block):
    text = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "BLOCK_BYTES", block)
        chunks = list(row_chunks(io.BytesIO(text), rows))
    assert b"".join(chunks) == text
    parts = [_parse(chunk) for chunk in chunks]
    assert all(part.height <= rows for part in parts)
    whole = _parse(text)
    assert (pl.concat(parts) if parts else whole.clear()).equals(whole)


def _reading_ahead() -> bool:
    return any(thread.name == "tapewatch-read-ahead" for thread in threading.enumerate())


def test_reading_ahead_stops_when_its_caller_stops_early():
    chunks = read_ahead(iter([b"row\n"] * 10_000))
    assert next(chunks) == b"row\n"
    chunks.close()
    assert not _reading_ahead()


def test_an_error_reading_ahead_is_raised_in_the_caller():
    def cut_short():
        yield b"first\n"
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    chunks = read_ahead(cut_short())
    assert next(chunks) == b"first\n"
    with pytest.raises(EOFError, match="end-of-stream"):
        next(chunks)
    assert not _reading_ahead()


def _batched(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Read files `rows` rows (CSV, Parquet) or lines (JSON lines) at a time."""
    for module, name in ((formats, "BATCH_ROWS"), (readers, "BATCH_ROWS"), (readers, "MESSAGE_LINES")):
        monkeypatch.setattr(module, name, rows)


def _outcome(result: readers.ReadResult) -> tuple:
    kept = {kind: getattr(result, kind).to_dicts() for kind in readers.RECORD_KINDS}
    letters = result.rejected.select("row", "reason", "record").to_dicts()
    return kept, letters, result.rows_read, result.blank_lines, result.duplicates_removed


def test_a_file_read_in_small_batches_gives_what_it_gives_read_whole(tmp_path, monkeypatch):
    """Rows, dead letters (with their places in the file), blank lines and an id-less trade repeated in
    the file are the same whether a batch holds the whole file or three rows; so are a diff-depth
    capture's levels, refused lines and update-id gaps."""
    trades = tmp_path / "t.csv.gz"
    body = "".join(
        f"AAA/BTC,{1709251200000 + i // 3 * 1000},,buy,{-1 if i % 7 == 3 else 1 + i % 2},1\n"
        + ("\n" if i % 5 == 0 else "")
        for i in range(40)
    )
    trades.write_bytes(gzip.compress(f"symbol,timestamp,datetime,side,price,amount\n{body}".encode()))
    messages = [
        f'{{"e":"depthUpdate","E":{1709251200000 + i},"s":"BNBBTC","U":{10 * i + (5 if i == 6 else 1)},'
        f'"u":{10 * i + 10},"b":[["1.{i}","2"],["1.0","0"]],"a":[]}}'
        for i in range(12)
    ]
    capture = tmp_path / "BNBBTC-depth.jsonl"
    capture.write_text("\n".join([*messages[:4], "", "junk", *messages[4:]]) + "\n")
    whole = [read_inputs([trades]), read_inputs([capture], kinds=("book",))]
    _batched(monkeypatch, 3)
    batched = [read_inputs([trades]), read_inputs([capture], kinds=("book",))]
    for one, other in zip(whole, batched, strict=True):
        assert _outcome(other) == _outcome(one)
    assert whole[0].rejected.height == 6 and whole[0].blank_lines == 8
    assert whole[1].rejected["row"].to_list() == [6] and whole[1].book_gaps.height == 1
    assert batched[1].book_gaps.to_dicts() == whole[1].book_gaps.to_dicts()
