"""The report's account of what PostgreSQL paid: the server-side columns, why any of them is empty, whether
the server was otherwise idle, and where the write time went (the server's own work against the driver's)."""

from __future__ import annotations

from collections.abc import Sequence

from pgstress.config import RunConfig
from pgstress.output.repetitions import is_repeated, size_rows
from pgstress.output.tables import Column, col, markdown_table
from pgstress.output.words import count
from pgstress.rows import OK, AsyncRow, Row, SyncRow
from pgstress.target import MeasureSupport
from pgstress.workload.payloads import get_codec
from pgstress.workload.payloads.pgarrays_codec import ARRAYS_FORMAT

# Above this share of a sync write_s, the report says that part (client work, the driver, the server) dominates it.
DOMINATES = 0.5


def stored_total_mb(row: Row) -> float | None:
    """The level's stored payload (pg_column_size summed over its records), MiB."""
    if isinstance(row, AsyncRow):
        per_record = row.db_payload_per_record_mb
        return per_record * row.writes_ok if per_record is not None else None
    stored = getattr(row, "db_payload_mb", None)
    return float(stored) if stored is not None else None


def wal_per_stored(row: Row) -> float | None:
    stored = stored_total_mb(row)
    return row.wal_mb / stored if row.wal_mb is not None and stored else None


def outside_server_s(row: Row) -> float | None:
    """insert_s minus the server's execution of the write statements: the driver, the wire, bind and the commit."""
    if row.insert_s is None or row.server_write_ms is None:
        return None
    return row.insert_s - row.server_write_ms / 1000


def _outside_share(row: Row) -> float | None:
    rest = outside_server_s(row)
    return rest / row.insert_s if rest is not None and row.insert_s else None


IO_COLUMNS = (col("io_written_mb", digits=1), col("io_extended_mb", digits=1), col("io_fsyncs"))
SERVER_TABLE = (
    col("iter"), col("epochs"), col("status"), col("stored_compression", "stored as"), col("heap_mb", digits=2),
    col("toast_mb", digits=2), col("wal_mb", digits=2), Column("WAL / stored", wal_per_stored, 2),
    col("insert_s", digits=3), col("server_write_ms", digits=1),
    Column("insert_s outside execution", outside_server_s, 3), col("select_s", digits=3),
    col("server_read_ms", digits=1), *IO_COLUMNS, col("checkpoints"), col("other_sessions"),
)  # fmt: skip


def _write_statement(config: RunConfig) -> str:
    return "COPY (which includes receiving the streamed value)" if config.write_method == "copy" else "INSERT"


def availability(support: MeasureSupport | None, config: RunConfig) -> list[str]:
    """Which server-side columns this server could fill, and why any stays empty."""
    if support is None:
        return ["- Server-side measures: not taken."]
    statements = (f"from pg_stat_statements (the server's execution of the {_write_statement(config)} and the"
                  " SELECT)" if support.statements_schema else f"empty: {support.statements_missing}")
    if support.statements_schema and config.write_method == "copy" and not support.tracks_utility:
        statements += ("; `server_write_ms` stays empty because pg_stat_statements.track_utility = off does not"
                       " record COPY")
    lines = [
        f"- `server_write_ms`, `server_read_ms`: {statements}.",
        "- `io_written_mb`, `io_extended_mb`, `io_fsyncs`: "
        + ("from pg_stat_io." if support.io else f"empty: {support.io_missing}."),
        "- `wal_mb`, `heap_mb`, `toast_mb`, `checkpoints`, `other_sessions`: from the server's WAL position, relation"
        " sizes and statistics views.",
    ]
    if support.compression_missing:
        lines.append(f"- `stored_compression`: empty: {support.compression_missing}.")
    return lines


def idle_text(rows: Sequence[Row], embedded: bool) -> str:
    """Whether the server was otherwise idle while the writes were measured."""
    measured = [row for row in rows if row.other_sessions is not None]
    busy = [row for row in measured if row.other_sessions]
    own = "pgstress's own throwaway server, which no other client used; " if embedded else ""
    if not measured:
        return "Other activity on the server: not measured."
    if not busy:
        return (f"Other activity: {own}no other session or autovacuum worker was busy at the start or the end of any"
                " write phase (`other_sessions` 0), so the server looked otherwise idle and `wal_mb` and the I/O"
                " columns are this run's own (sampled at those two moments; work in between would not be seen).")
    listed = ", ".join(f"{row.iter} ({row.other_sessions})" for row in busy[:12])
    more = f" and {len(busy) - 12} more" if len(busy) > 12 else ""
    return (f"Other activity: {own}other sessions or autovacuum workers were busy at the start or the end of the write"
            f" phase in {len(busy)} of {count(len(measured), 'iteration')} ({listed}{more}; iteration (busy backends)):"
            " their WAL and I/O may be included in those rows' `wal_mb` and `io_*` figures (a session that only"
            " waited adds nothing).")


def _outside_execution(config: RunConfig, row: Row) -> str:
    """What `insert_s` holds besides the statement's execution, for this write method and column type."""
    if config.write_method == "copy":
        return "the COPY's set-up, the `SELECT lastval()` that returns the id, and the commit"
    if get_codec(row.format).column_type == "JSONB":
        return ("the driver handing the value over, the wire, the server parsing the JSON text into jsonb at bind"
                " (which pg_stat_statements does not count), and the commit")
    if row.format == ARRAYS_FORMAT:
        return ("the driver handing the arrays over, the wire, the server reading the binary arrays at bind and"
                " the commit")
    return "the driver handing the value over, the wire, bind (a copy of the bytes) and the commit"


def write_split_sentences(rows: Sequence[Row], config: RunConfig) -> list[str]:
    """Where the write time went at the largest successful size (with --repeat, the medians of its repetitions):
    the statement's execution against the rest of `insert_s`; in sync mode also what dominated `write_s`."""
    split = [row for row in size_rows(rows) if row.status == OK and _outside_share(row) is not None]
    if not split:
        return []
    top = max(split, key=lambda row: row.epochs)
    assert top.insert_s is not None and top.server_write_ms is not None
    rest, share = outside_server_s(top) or 0.0, _outside_share(top) or 0.0
    summed = " summed over the level's records" if isinstance(top, AsyncRow) else ""
    median = ", medians of its repetitions" if is_repeated(rows) else ""
    sentences = [
        f"At {top.epochs:,} epochs{median}, `insert_s` was {top.insert_s:,.3f} s{summed}, of which the server"
        f" executed the {_write_statement(config)} for {top.server_write_ms / 1000:,.3f} s ({(1 - share) * 100:.0f} %);"
        f" the other {rest:,.3f} s ({share * 100:.0f} %) were {_outside_execution(config, top)}."]
    if isinstance(top, SyncRow):  # an async batch's bound is said from its client CPU and database wait
        sentences += _sync_write_parts(top, config, rest)
    return sentences


def _sync_write_parts(row: SyncRow, config: RunConfig, rest: float) -> list[str]:
    """What `write_s` was made of, and which part, if any, dominated it: said only from the measured split."""
    if not row.write_s or row.gen_s is None or row.encode_s is None or row.server_write_ms is None:
        return []
    client, server = row.gen_s + row.encode_s, row.server_write_ms / 1000
    shares = {part: seconds / row.write_s for part, seconds in (("client", client), ("server", server),
                                                                ("rest", rest))}
    driver_bound = config.write_method != "copy" and get_codec(row.format).column_type != "JSONB"
    if shares["client"] > DOMINATES:
        verdict = "client-side generation and encoding dominate the write, not PostgreSQL's work"
    elif shares["rest"] > DOMINATES and driver_bound:
        verdict = "the driver and the wire dominate the write, not PostgreSQL's work"
    elif shares["rest"] > DOMINATES:  # jsonb's rest holds the server's parsing at bind; copy's, its set-up
        verdict = "the rest of `insert_s`, described above, is most of it"
    elif shares["server"] > DOMINATES:
        verdict = f"the server's own execution of the {_write_statement(config)} dominates the write"
    else:
        verdict = "no one part is most of it"
    sentences = [f"Of the {row.write_s:,.3f} s write, generating and encoding the record took"
                 f" {shares['client'] * 100:.0f} %, the server's execution {shares['server'] * 100:.0f} % and the rest"
                 f" of `insert_s` {shares['rest'] * 100:.0f} %: {verdict}."]
    if shares["rest"] > DOMINATES and driver_bound and config.write_method == "insert":
        sentences.append("psycopg sends a parameter with libpq in non-blocking mode, which for values of hundreds"
                         " of MiB costs several times the server's own work (bench/results.md);"
                         " `--write-method insert_blocking` sends it with libpq's blocking send.")
    return sentences


def server_section(rows: Sequence[Row], config: RunConfig, support: MeasureSupport | None, embedded: bool,
                   heading: str) -> list[str]:
    """The report's section on what PostgreSQL paid, under `heading`."""
    out = [heading, "", *availability(support, config), "", idle_text(rows, embedded), ""]
    measured = [row for row in rows if row.wal_mb is not None or row.toast_mb is not None]
    if measured:
        columns = [c for c in SERVER_TABLE if support is None or support.io or c not in IO_COLUMNS]
        out += [markdown_table(measured, columns), ""]
    return out
