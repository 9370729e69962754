"""The asyncpg side: where the pool connects, and the async mode's writes and reads of one table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import psycopg.conninfo

from pgstress.db.array_binary import ARRAY_OIDS, fields_of
from pgstress.db.copy_binary import JSONB_VERSION, binary_copy_chunks, framed_as_read, jsonb_text
from pgstress.db.schema import TableNotOurs, TableSql
from pgstress.workload.payloads import EncodedPayload, VerifyError

APPLICATION_NAME = "pgstress-async"
_CLOSE_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 10.0


def asyncpg_connect_args(dsn: str) -> dict[str, Any]:
    """asyncpg keyword arguments for a libpq DSN (asyncpg itself parses only the URL form)."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    args: dict[str, Any] = {}
    host = params.get("host") or params.get("hostaddr")
    if host:
        hosts = str(host).split(",")
        args["host"] = hosts if len(hosts) > 1 else hosts[0]
    if params.get("port"):
        ports = [int(p) for p in str(params["port"]).split(",")]
        args["port"] = ports if len(ports) > 1 else ports[0]
    for libpq_name, asyncpg_name in (("user", "user"), ("password", "password"), ("dbname", "database"),
                                     ("passfile", "passfile"), ("sslmode", "ssl")):
        if params.get(libpq_name):
            args[asyncpg_name] = params[libpq_name]
    if params.get("connect_timeout"):
        args["timeout"] = float(str(params["connect_timeout"]))
    return args


def _jsonb_to_binary(text: bytes | bytearray) -> bytes:
    return JSONB_VERSION + text


def _raw(value: bytes) -> bytes:
    return value


def _raw_arrays(conn: asyncpg.Connection) -> None:
    """pgarrays' columns travel in their binary wire form, both ways, as the codec builds and reads them.

    asyncpg's public set_type_codec refuses array types (it would have each element converted to and from a
    Python object, millions of them per record); the protocol's own registry, which set_type_codec fills for
    scalar types, takes a raw binary codec for an array type as well (asyncpg 0.32; the async pgarrays tests
    in tests/run cover it, so a version that changes this fails them).
    """
    settings = conn._protocol.get_settings()
    for element, array_oid in ARRAY_OIDS.items():
        settings.add_python_codec(array_oid, f"_{element.oid}", "pg_catalog", [], "scalar", _raw, _raw, "binary")
    conn._drop_local_statement_cache()


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb travels as the codec's own JSON text: asyncpg neither re-encodes nor parses it."""
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=_jsonb_to_binary, decoder=_raw, format="binary")
    _raw_arrays(conn)


async def _as_async(chunks: Iterable[bytes | memoryview]) -> AsyncIterator[bytes | memoryview]:
    for chunk in chunks:
        yield chunk


class ServerUnreachable(ConnectionRefusedError):
    """The pool could not (re)connect: asyncpg surfaces this as a bare OSError, psycopg as OperationalError."""


class AsyncDatabase:
    """asyncpg calls for one table over a pool of exactly C connections."""

    def __init__(self, pool: asyncpg.Pool, table: TableSql, connections: int, write_method: str = "insert") -> None:
        self.pool = pool
        self.memory_failures = 0  # MemoryErrors inside the event loop's transports (see _on_loop_exception)
        self.table = table
        self.connections = connections
        self._jsonb = table.column_type == "JSONB"
        self._copy = write_method == "copy"
        self._columns = len(table.payload_columns)  # 0: the one payload column; else the payload is their fields
        self._insert = table.insert([f"${n}" for n in range(1, len(table.columns) + 3)]).as_string(None)
        self._copy_columns = [name for name, _kind in table.columns] + ["epochs", "content_hash"]
        self._select = table.select_payload("$1").as_string(None)
        self._owned = table.owned_condition().as_string(None)

    @classmethod
    async def open(cls, dsn: str, table: TableSql, connections: int, statement_timeout_ms: int,
                   write_method: str = "insert") -> AsyncDatabase:
        pool = await asyncpg.create_pool(
            min_size=connections,
            max_size=connections,
            max_inactive_connection_lifetime=0,  # keep all C open for the whole ramp
            init=_init_connection,
            server_settings={"statement_timeout": str(statement_timeout_ms), "application_name": APPLICATION_NAME},
            **asyncpg_connect_args(dsn),
        )
        db = cls(pool, table, connections, write_method)
        asyncio.get_running_loop().set_exception_handler(db._on_loop_exception)
        return db

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A MemoryError while a connection receives (asyncio's transport reading a huge result) closes that
        connection, and the statement waiting on it fails as a lost connection: counted here (not logged as a
        traceback), so the record's failure is reported as the client's memory (see `connection`)."""
        if isinstance(context.get("exception"), MemoryError):
            self.memory_failures += 1
            return
        loop.default_exception_handler(context)

    async def _acquire(self) -> asyncpg.Connection:
        try:
            return await self.pool.acquire()
        except OSError as exc:  # a vanished socket is FileNotFoundError, a dead port ConnectionRefusedError
            raise ServerUnreachable(f"cannot reach the server: {exc}") from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._acquire()
        memory_failures = self.memory_failures
        try:
            yield conn
        except Exception as exc:
            if self.memory_failures > memory_failures:
                raise MemoryError(f"the client could not allocate memory for what the server sent ({exc})") from exc
            raise
        finally:
            await self.pool.release(conn)

    async def replace_dead_connections(self) -> None:
        """Reconnect every pooled connection the server has closed since its last use (a restart, a kill).

        The pool only notices a dead connection when a statement fails on it; without this check a
        server restart between levels would cost the next level's records. All C connections are
        held at once so each is probed; a dead one is closed and the pool reconnects it in a second
        round, here rather than inside the level's timed batch. Raises ServerUnreachable when C
        working connections cannot be had.
        """
        try:
            for _ in range(2):
                dead = await self._probe_all()
                if not dead:
                    return
        except ServerUnreachable:
            raise
        except Exception as exc:  # whatever the pool raised, the level cannot have its C connections
            raise ServerUnreachable(f"cannot reach the server: {type(exc).__name__}: {exc}") from exc
        raise ServerUnreachable(f"cannot reach the server: {dead} of {self.connections} connections fail even"
                                " when new")

    async def _probe_all(self) -> int:
        """Probe all C connections at once, close the dead ones; how many were dead."""
        held: list[asyncpg.Connection] = []
        try:
            for _ in range(self.connections):
                held.append(await self._acquire())
            probes = await asyncio.gather(
                *(asyncio.wait_for(conn.fetchval("SELECT 1"), _PROBE_TIMEOUT_S) for conn in held),
                return_exceptions=True,
            )
            dead = [conn for conn, probe in zip(held, probes) if isinstance(probe, BaseException)]
            for conn in dead:
                conn.terminate()
        finally:
            for conn in held:
                await self.pool.release(conn)
        return len(dead)

    async def on_every_connection(self, query: str) -> None:
        """Run `query` once on each of the C pooled connections (all held at once, so each gets it)."""
        held: list[asyncpg.Connection] = []
        try:
            for _ in range(self.connections):
                held.append(await self._acquire())
            await asyncio.gather(*(conn.execute(query) for conn in held))
        finally:
            for conn in held:
                await self.pool.release(conn)

    async def backend_pids(self) -> list[int]:
        """pg_backend_pid() of each of the C pooled connections (all held at once, so each answers)."""
        held: list[asyncpg.Connection] = []
        try:
            for _ in range(self.connections):
                held.append(await self._acquire())
            return [int(pid) for pid in await asyncio.gather(*(conn.fetchval("SELECT pg_backend_pid()")
                                                                for conn in held))]
        finally:
            for conn in held:
                await self.pool.release(conn)

    async def insert(self, payload: EncodedPayload) -> int:
        """Store one record with the configured write method; returns its id."""
        async with self.connection() as conn:
            if not self._copy:
                values = fields_of(payload.data, self._columns) if self._columns else [payload.data]
                record_id = await conn.fetchval(self._insert, *values, payload.epochs, payload.content_hash)
                if record_id is None:
                    raise TableNotOurs(self.table.table)
                return int(record_id)
            status = await conn.copy_to_table(
                self.table.table, source=_as_async(binary_copy_chunks(payload, self._jsonb)),
                columns=self._copy_columns, format="binary", where=self._owned,
            )
            if status != "COPY 1":
                raise TableNotOurs(self.table.table)
            return int(await conn.fetchval("SELECT lastval()"))  # this session's nextval of the id

    async def fetch(self, record_id: int) -> tuple[memoryview, int, str]:
        async with self.connection() as conn:
            found = await conn.fetchrow(self._select, record_id)
        if found is None:
            raise VerifyError(f"record {record_id} is no longer in table {self.table.table!r}")
        *values, epochs, content_hash = found
        if self._columns:  # the columns' values as the fields they were sent as (one copy of them)
            return memoryview(framed_as_read(values)), int(epochs), str(content_hash)
        view = memoryview(values[0])
        return jsonb_text(view) if self._jsonb else view, int(epochs), str(content_hash)

    async def close(self) -> None:
        """Cancel whatever an interrupt left running, then close the pool (terminate if it hangs)."""
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        if leftovers:  # a task waiting on a connection that lost its result never ends: wait a while only
            await asyncio.wait(leftovers, timeout=_CLOSE_TIMEOUT_S)
        if self.memory_failures:  # a connection that failed to allocate may never answer a polite close
            self.pool.terminate()
            return
        try:
            await asyncio.wait_for(self.pool.close(), _CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - a pool that cannot close cleanly is terminated
            self.pool.terminate()
