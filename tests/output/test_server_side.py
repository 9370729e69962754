"""Where the write time went, in words: what the report may claim from insert_s and the server's own time."""

from __future__ import annotations

from pgstress.config import RunConfig
from pgstress.output.server_side import idle_text, write_split_sentences
from pgstress.rows import AsyncRow, SyncRow


def row(epochs: int, payload_format: str, insert_s: float, server_write_ms: float | None, *, rep: int = 1,
        gen_s: float | None = None, encode_s: float | None = None) -> SyncRow:
    write_s = insert_s + (gen_s or 0.0) + (encode_s or 0.0)
    return SyncRow(iter=epochs // 1000, epochs=epochs, rep=rep, format=payload_format, insert_s=insert_s,
                   server_write_ms=server_write_ms, other_sessions=0, write_s=write_s, gen_s=gen_s, encode_s=encode_s)


def test_a_bytea_insert_mostly_outside_the_server_is_called_driver_bound() -> None:
    text = " ".join(write_split_sentences([row(1000, "bson", 1.0, 100.0, gen_s=0.1, encode_s=0.1),
                                           row(2000, "bson", 4.0, 1000.0, gen_s=0.5, encode_s=0.5)],
                                          RunConfig(write_method="insert")))
    assert text.startswith("At 2,000 epochs, `insert_s` was 4.000 s, of which the server executed the INSERT for"
                           " 1.000 s (25 %); the other 3.000 s (75 %) were the driver handing the value over")
    assert ("Of the 5.000 s write, generating and encoding the record took 20 %, the server's execution 20 % and the"
            " rest of `insert_s` 60 %: the driver and the wire dominate the write, not PostgreSQL's work.") in text
    assert "--write-method insert_blocking" in text


def test_a_write_mostly_generation_and_encoding_is_not_blamed_on_the_driver() -> None:
    """The seed's sync report: insert_s 0.07 s of a 0.53 s write, most of insert_s outside the server."""
    text = " ".join(write_split_sentences([row(100_000, "ndjson_zstd", 0.07, 20.0, gen_s=0.16, encode_s=0.30)],
                                          RunConfig()))
    assert "the other 0.050 s (71 %) were the driver handing the value over" in text
    assert "driver and the wire dominate" not in text.lower()
    assert ("Of the 0.530 s write, generating and encoding the record took 87 %, the server's execution 4 % and the"
            " rest of `insert_s` 9 %: client-side generation and encoding dominate the write, not PostgreSQL's"
            " work.") in text


def test_an_async_level_says_nothing_of_what_dominates_its_write() -> None:
    """Its batch's bound comes from client CPU against database wait; insert_s, summed over overlapping records,
    must not contradict it."""
    level = AsyncRow(iter=1, concurrency=4, epochs=1000, format="bson", insert_s=4.0, server_write_ms=400.0,
                     write_s=2.0, writes_ok=4)
    text = " ".join(write_split_sentences([level], RunConfig(mode="async", write_method="insert")))
    assert "summed over the level's records" in text and "dominate" not in text


def test_with_repetitions_the_split_is_of_the_medians() -> None:
    reps = [row(1000, "bson", insert_s, server_ms, rep=rep, gen_s=0.1, encode_s=0.1)
            for rep, (insert_s, server_ms) in enumerate([(1.0, 600.0), (3.0, 200.0), (2.0, 400.0)], 1)]
    text = " ".join(write_split_sentences(reps, RunConfig(repeat=3)))
    assert text.startswith("At 1,000 epochs, medians of its repetitions, `insert_s` was 2.000 s, of which the server"
                           " executed the INSERT for 0.400 s (20 %)")


def test_jsonb_and_copy_are_not_blamed_on_the_driver() -> None:
    jsonb = " ".join(write_split_sentences([row(1000, "jsonb", 4.0, 500.0, gen_s=0.5, encode_s=0.5)],
                                           RunConfig(write_method="insert")))
    assert "parsing the JSON text into jsonb at bind" in jsonb and "dominate" not in jsonb
    assert "the rest of `insert_s` 70 %: the rest of `insert_s`, described above, is most of it." in jsonb
    copy = " ".join(write_split_sentences([row(1000, "bson", 4.0, 500.0)], RunConfig(write_method="copy")))
    assert "executed the COPY (which includes receiving the streamed value)" in copy and "dominate" not in copy


def test_without_the_server_time_nothing_is_claimed() -> None:
    assert write_split_sentences([row(1000, "bson", 4.0, None)], RunConfig()) == []


def test_the_report_says_whether_the_server_was_otherwise_idle() -> None:
    quiet = [row(1000, "bson", 1.0, 1.0)]
    assert "the server looked otherwise idle" in idle_text(quiet, embedded=False)
    busy = [row(1000, "bson", 1.0, 1.0), SyncRow(iter=2, epochs=2000, other_sessions=3)]
    text = idle_text(busy, False)
    assert "busy at the start or the end of the write phase in 1 of 2 iterations (2 (3)" in text
    assert "their WAL and I/O may be included in those rows'" in text and "are included" not in text
    assert "in 1 of 1 iteration (" in idle_text(busy[1:], False)
