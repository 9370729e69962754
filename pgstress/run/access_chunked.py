"""The access phases' client side for the chunked layout (--layout chunked), shared by both modes: which chunks an
access needs, the window or the metric out of them, and the chunks an append writes.

Epoch i of a record is in chunk i // K (run/layout.py), so:
- range: only the chunks that overlap the window are fetched (`chunk BETWEEN a AND b`) and decoded;
- metric: jsonb's jsonpath per chunk row on the server, each row's array in chunk order; the other formats fetch
  every chunk and decode it (where a metric lies inside a zstd frame or a BSON document is unknown);
- append: a partial last chunk is fetched and rewritten filled up to K epochs, the rest of the new epochs go in new
  chunk rows, all in one transaction; no other chunk is read or written.
Each is verified against the generator like the value layout's (run/access.py); a chunk missing, repeated or out
of order is VERIFY_FAILED.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pgstress.run.access import APPEND, METRIC, RANGE, RecordTruth
from pgstress.run.access_work import server_part
from pgstress.run.layout import check_chunk_numbers, chunks_of, decoded_chunk, regroup
from pgstress.run.measure import StageClock
from pgstress.workload.epochs import Epoch, EpochChunk
from pgstress.workload.payloads import Codec, VerifyError

Chunk = tuple[int, "bytes | bytearray | memoryview", int]  # (chunk number, its value, its epochs column)


def how_done_chunked(payload_format: str, accesses: tuple[str, ...]) -> dict[str, str]:
    """How each access asked is done for a format in the chunked layout, in words (for the report)."""
    metric = ("jsonpath of the metric on the server, per chunk row" if payload_format == "jsonb"
              else "every chunk fetched and decoded")
    window = ("jsonpath slice of each chunk row overlapping the window, on the server" if payload_format == "jsonb"
              else "only the chunks overlapping the window fetched and decoded")
    how = {RANGE: window, METRIC: metric,
           APPEND: "the partial last chunk rewritten filled, the rest as new chunk rows (one transaction)"}
    return {name: text for name, text in how.items() if name in accesses}


def received_bytes(chunks: Sequence[Chunk], jsonb: bool) -> int:
    """The bytes of the chunks' values as the driver received them (binary jsonb: a version byte before the text, as
    the value layout's access phases count it)."""
    return sum(len(data) + jsonb for _number, data, _epochs in chunks)


def window_chunks(epochs: int, chunk_epochs: int, truth: RecordTruth) -> tuple[int, int]:
    """(first, last) chunk a window needs."""
    return chunks_of(epochs, chunk_epochs, truth.window_first, truth.window_count)


def window_from_chunks(codec: Codec, chunks: Sequence[Chunk], truth: RecordTruth, epochs: int,
                       chunk_epochs: int) -> list[Epoch]:
    """The window out of the chunks that overlap it, each decoded; they must be exactly those chunks."""
    first, last = window_chunks(epochs, chunk_epochs, truth)
    check_chunk_numbers([number for number, _data, _epochs in chunks], first, last)
    got: list[Epoch] = []
    lo, hi = truth.window_first, truth.window_first + truth.window_count
    for number, data, stored_epochs in chunks:
        start = number * chunk_epochs
        decoded = decoded_chunk(codec, data, number, stored_epochs, StageClock())
        got.extend(decoded[max(0, lo - start):max(0, hi - start)])
    return got


def metric_from_chunks(codec: Codec, chunks: Sequence[Chunk], key: str) -> list[object]:
    """One metric of every epoch out of every chunk of the record, decoded in chunk order."""
    check_chunk_numbers([number for number, _data, _epochs in chunks], 0, max(0, len(chunks) - 1))
    values: list[object] = []
    for number, data, stored_epochs in chunks:
        try:
            values.extend([epoch[key] for epoch in decoded_chunk(codec, data, number, stored_epochs, StageClock())])
        except (KeyError, TypeError) as exc:
            raise VerifyError(f"a decoded epoch of chunk {number} has no metric {key!r}") from exc
    return values


def window_from_server(parts: Sequence[tuple[int, bytes | bytearray | memoryview]], epochs: int, chunk_epochs: int,
                       truth: RecordTruth) -> list[Any]:
    """The window from the jsonpath slice of each chunk row it overlaps (JSON text), joined in chunk order."""
    first, last = window_chunks(epochs, chunk_epochs, truth)
    check_chunk_numbers([number for number, _text in parts], first, last)
    return [epoch for _number, text in parts for epoch in server_part(text)]


def window_parameters(epochs: int, chunk_epochs: int, truth: RecordTruth) -> dict[str, int]:
    """The window statement's parameters by name (db/chunked.py's window_per_chunk), the record's id left out."""
    first, last = window_chunks(epochs, chunk_epochs, truth)
    return {"first": truth.window_first, "last": truth.window_first + truth.window_count - 1, "k": chunk_epochs,
            "first_chunk": first, "last_chunk": last}


def metric_from_server(parts: Sequence[tuple[int, bytes | bytearray | memoryview]]) -> list[Any]:
    """The metric from each chunk row's jsonpath array (JSON text), joined in chunk order."""
    check_chunk_numbers([number for number, _text in parts], 0, max(0, len(parts) - 1))
    values: list[Any] = []
    for _number, text in parts:
        values.extend(server_part(text))
    return values


@dataclass
class AppendPlan:
    """What an append writes: the last chunk filled (when it was partial) and the new chunks after it."""

    last_chunk: int  # the record's last chunk before the append
    fill: int  # epochs the last chunk takes (0: it is full, nothing rewritten)
    new_chunks: list[list[EpochChunk]]  # the epochs of each new chunk row, from last_chunk + 1


def append_plan(epochs: int, chunk_epochs: int, truth: RecordTruth) -> AppendPlan:
    last = max(0, epochs - 1) // chunk_epochs
    in_last = epochs - last * chunk_epochs
    added = truth.appended
    fill = min(chunk_epochs - in_last, len(added.table))
    rest = EpochChunk(added.table[fill:], added.shape)
    return AppendPlan(last, fill, list(regroup([rest], chunk_epochs)) if len(rest.table) else [])


def filled_chunk(codec: Codec, last: Chunk, plan: AppendPlan, truth: RecordTruth) -> tuple[bytes | bytearray, int]:
    """The last chunk decoded, extended by the first new epochs, encoded again; with its epoch count."""
    number, data, stored_epochs = last
    if number != plan.last_chunk:
        raise VerifyError(f"the record's last chunk is {number}, expected {plan.last_chunk}")
    epochs = decoded_chunk(codec, data, number, stored_epochs, StageClock())
    epochs.extend(EpochChunk(truth.appended.table[:plan.fill], truth.appended.shape).as_dicts())
    return codec.encode_stream([epochs]), len(epochs)


def new_chunk_values(codec: Codec, plan: AppendPlan) -> tuple[list[bytes | bytearray], list[int]]:
    """Each new chunk row's value and epoch count."""
    values = [codec.encode_stream([[epoch for piece in group for epoch in piece.as_dicts()]])
              for group in plan.new_chunks]
    return values, [sum(len(piece.table) for piece in group) for group in plan.new_chunks]
