"""Where the write time went, in words: what the report may claim from insert_s and the server's own time."""

from __future__ import annotations

from pgstress.config import RunConfig
from pgstress.output.server_side import idle_text, write_split_sentences
from pgstress.rows import SyncRow


def row(epochs: int, payload_format: str, insert_s: float, server_write_ms: float | None) -> SyncRow:
    return SyncRow(iter=1, epochs=epochs, format=payload_format, insert_s=insert_s, server_write_ms=server_write_ms,
                   other_sessions=0)


def test_a_bytea_insert_mostly_outside_the_server_is_called_driver_bound() -> None:
    text = " ".join(write_split_sentences([row(1000, "bson", 1.0, 100.0), row(2000, "bson", 4.0, 1000.0)],
                                          RunConfig(write_method="insert")))
    assert text.startswith("At 2,000 epochs `insert_s` was 4.000 s, of which the server executed the INSERT for"
                           " 1.000 s (25 %); the other 3.000 s (75 %) were the driver handing the value over")
    assert "The driver and the wire dominate the write" in text and "--write-method insert_blocking" in text


def test_jsonb_and_copy_are_not_blamed_on_the_driver() -> None:
    jsonb = " ".join(write_split_sentences([row(1000, "jsonb", 4.0, 500.0)], RunConfig(write_method="insert")))
    assert "parsing the JSON text into jsonb at bind" in jsonb and "dominate" not in jsonb
    copy = " ".join(write_split_sentences([row(1000, "bson", 4.0, 500.0)], RunConfig(write_method="copy")))
    assert "executed the COPY (which includes receiving the streamed value)" in copy and "dominate" not in copy


def test_without_the_server_time_nothing_is_claimed() -> None:
    assert write_split_sentences([row(1000, "bson", 4.0, None)], RunConfig()) == []


def test_the_report_says_whether_the_server_was_otherwise_idle() -> None:
    quiet = [row(1000, "bson", 1.0, 1.0)]
    assert "the server looked otherwise idle" in idle_text(quiet, embedded=False)
    busy = [row(1000, "bson", 1.0, 1.0), SyncRow(iter=2, epochs=2000, other_sessions=3)]
    assert "busy at the start or the end of the write phase in 1 of 2 iterations (2 (3)" in idle_text(busy, False)
