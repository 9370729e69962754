"""A password given through --dsn (keyword or URL form), PG_DSN or PGPASSWORD never reaches the
terminal, the CSV, the report, the --export-json record, or any other file a run writes. A succeeding
run (one iteration of which fails with a message quoting the password) and failing runs are grepped
for it, and for every
16-character piece of it, in sync mode and in async mode (every record of the async level quotes it:
the pool's connections, the level's status line and the report all carry the failure).

The password is every printable ASCII character: quoted in key=value strings, percent-encoded in a
URL with two hosts (the first unreachable, so libpq moves on to the second), and raw in a URL where
libpq reads it raw (all but '@', '/', '%' and space).

Servers: the embedded one (socket, trust: the password is accepted unchecked) and, when the suite
has PostgreSQL 15, a role with a real scram password over TCP 127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import psycopg.conninfo
import pytest
from helpers import TINY_RAMP, RampMode, add_insert_trigger, create_pgstress_table, read_csv
from psycopg import sql

PRINTABLE = "".join(chr(code) for code in range(32, 127))
RAW_IN_URL = "".join(char for char in PRINTABLE if char not in "@/% ")
PG15_ENV = "PGSTRESS_TEST_PG15_DSN"
TARGETS = ["embedded"] + (["pg15-tcp"] if os.environ.get(PG15_ENV) else [])
SOURCES = ["--dsn keywords", "--dsn URL", "--dsn URL raw", "PG_DSN", "PGPASSWORD"]


def _password(source: str) -> str:
    return RAW_IN_URL if source == "--dsn URL raw" else PRINTABLE


@dataclass(frozen=True)
class Target:
    params: dict[str, str]  # connection keywords without the password

    def keywords(self, password: str | None) -> str:
        return psycopg.conninfo.make_conninfo(**self.params, **({"password": password} if password else {}))

    def url(self, password: str, *, encode: bool = True) -> str:
        """A URL with two hosts, the first of which refuses: libpq connects to the second."""
        written = quote(password, safe="") if encode else password
        host, user, dbname = self.params["host"], self.params["user"], self.params["dbname"]
        if host.startswith("/"):
            return f"postgresql://{user}:{written}@/{dbname}?host=127.0.0.1,{quote(host, safe='')}&port=1,5432"
        return f"postgresql://{user}:{written}@127.0.0.1:1,{host}:{self.params['port']}/{dbname}"

    @property
    def checks_passwords(self) -> bool:
        """The TCP target's role has a real password (the embedded server trusts its socket)."""
        return not self.params["host"].startswith("/")

    def with_port(self, port: int) -> Target:
        return Target({**self.params, "host": "127.0.0.1", "port": str(port)})


def _pass_password(target: Target, source: str, password: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The argv (and environment) that hand the password to pgstress through `source`."""
    if source == "--dsn keywords":
        return ["--dsn", target.keywords(password)]
    if source == "--dsn URL":
        return ["--dsn", target.url(password)]
    if source == "--dsn URL raw":
        return ["--dsn", target.url(password, encode=False)]
    if source == "PG_DSN":
        monkeypatch.setenv("PG_DSN", target.keywords(password))
        return []
    monkeypatch.setenv("PGPASSWORD", password)
    return ["--dsn", target.keywords(None)]


_roles = itertools.count()


def _grant_schema(admin: psycopg.Connection, role: str) -> None:
    """GRANT on the shared schema; another session granting on it at the same moment (another suite on the
    cluster) makes PostgreSQL refuse with "tuple concurrently updated": then grant again."""
    for attempt in range(5):
        try:
            admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
            return
        except psycopg.errors.InternalError_:
            if attempt == 4:
                raise


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "embedded":
        params = psycopg.conninfo.conninfo_to_dict(request.getfixturevalue("embedded_dsn"))
        yield Target({key: str(params[key]) for key in ("host", "dbname", "user")})
        return
    role = f"pgstress_pw_{os.getpid()}_{next(_roles)}"
    with psycopg.connect(os.environ[PG15_ENV], autocommit=True) as admin:
        dbname = admin.info.dbname
        try:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role),
                                                                            sql.Literal(PRINTABLE)))
            _grant_schema(admin, role)
            yield Target({"host": "127.0.0.1", "port": "5432", "dbname": dbname, "user": role})
        finally:
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _pieces(password: str) -> list[str]:
    """The password, its percent-encoded form, and every 16-character piece of each: no part of it may leak."""
    forms = [password, quote(password, safe="")]
    return [form[start:start + 16] for form in forms for start in range(max(1, len(form) - 15))]


def _assert_nowhere(password: str, result, directory: Path) -> list[Path]:
    written = [path for path in directory.rglob("*") if path.is_file()]
    texts = {"stdout": result.out, "stderr": result.err,
             **{str(path): path.read_bytes().decode("utf-8", "replace") for path in written}}
    for piece in _pieces(password):
        for where, text in texts.items():
            assert piece not in text, (piece, where)
    return written


@pytest.mark.parametrize("source", SOURCES)
def test_password_stays_out_of_a_succeeding_run(target: Target, source: str, table_name: str, ramp_mode: RampMode,
                                                run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = _password(source)
    with psycopg.connect(target.keywords(PRINTABLE), autocommit=True) as conn:
        if password != PRINTABLE and target.checks_passwords:
            conn.execute(sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(sql.Literal(password)))
        create_pgstress_table(conn, table_name, "ndjson_zstd")
        add_insert_trigger(
            conn, table_name,
            f"IF NEW.epochs = 2000 THEN RAISE EXCEPTION 'refused: the client''s secret is % (a server echoing it)',"
            f" {sql.Literal(password).as_string(conn)}; END IF; RETURN NEW;",
        )
        try:
            argv = _pass_password(target, source, password, monkeypatch)
            result = run_cli(*ramp_mode.argv(), *argv, "--table", table_name, *TINY_RAMP,
                             "--export-json", str(tmp_path / "run.json"))
        finally:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))
            conn.execute(sql.SQL("DROP FUNCTION {}()").format(sql.Identifier(f"{table_name}_fault")))

    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    assert [row["status"] for row in rows] == ["OK", "ERROR", "OK"]
    cause = ramp_mode.assert_failed(rows[1], "ERROR", failed=ramp_mode.concurrency)
    assert "the client's secret is" in cause and "*** (a server echoing it)" in cause
    assert "*** (a server echoing it)" in result.out  # the progress line shows the failure, scrubbed
    written = _assert_nowhere(password, result, tmp_path)
    assert {ramp_mode.csv_path(tmp_path), tmp_path / "report.md", tmp_path / "run.json"} <= set(written)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    if source != "PGPASSWORD":
        assert "***" in report  # the DSN is shown, with its password replaced


@pytest.mark.parametrize("source", SOURCES)
def test_password_stays_out_of_a_refused_connection(target: Target, source: str, ramp_mode: RampMode, run_cli,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = _password(source)
    argv = _pass_password(target.with_port(1), source, password, monkeypatch)
    result = run_cli(*ramp_mode.argv(), *argv, *TINY_RAMP)
    assert result.code == 1
    assert len(result.err.splitlines()) == 1 and "127.0.0.1:1" in result.err
    assert _assert_nowhere(password, result, tmp_path) == []


@pytest.mark.pg15
@pytest.mark.skipif(not os.environ.get(PG15_ENV), reason="needs the PostgreSQL 15 cluster (password auth over TCP)")
@pytest.mark.parametrize("source", SOURCES)
def test_wrong_password_is_not_echoed_by_pg15(source: str, ramp_mode: RampMode, run_cli, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "Wrong-Pw-99a1-NotIt"
    target = Target({"host": "127.0.0.1", "port": "5432", "dbname": "postgres", "user": "pgstress_no_such_role"})
    argv = _pass_password(target, source, wrong, monkeypatch)
    result = run_cli(*ramp_mode.argv(), *argv, *TINY_RAMP)
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) == 1 and "password authentication failed" in lines[0], result.err
    assert _assert_nowhere(wrong, result, tmp_path) == []


SHORT_PASSWORDS = ["p", "t", "5", "e", "ti", "%", "."]
GLUED_MASK = re.compile(r"\w\*\*\*|\*\*\*\w")  # a mask inside a word: where it lands tells the password


@pytest.mark.parametrize("password", SHORT_PASSWORDS)
def test_a_short_password_leaves_libpqs_message_readable(password: str, embedded_dsn: str, ramp_mode: RampMode,
                                                         run_cli, tmp_path: Path) -> None:
    """libpq's "connection to server at ..., port 1 failed" keeps its words: the password `p` is not masked in
    "port", nor `5` in a port number; the DSN shown still has password=***."""
    params = psycopg.conninfo.conninfo_to_dict(embedded_dsn)
    target = Target({key: str(params[key]) for key in ("host", "dbname", "user")}).with_port(1)
    result = run_cli(*ramp_mode.argv(), "--dsn", target.keywords(password), *TINY_RAMP)
    assert result.code == 1, result.err
    (line,) = result.err.splitlines()
    assert 'connection to server at "127.0.0.1", port 1 failed: Connection refused' in line, line
    assert "***" not in line and not GLUED_MASK.search(line), line


@pytest.mark.parametrize("password", SHORT_PASSWORDS)
def test_a_short_password_echoed_by_the_server_is_masked_as_a_word(password: str, embedded_dsn: str,
                                                                   embedded_db: psycopg.Connection, table_name: str,
                                                                   ramp_mode: RampMode, run_cli,
                                                                   tmp_path: Path) -> None:
    params = psycopg.conninfo.conninfo_to_dict(embedded_dsn)
    target = Target({key: str(params[key]) for key in ("host", "dbname", "user")})
    create_pgstress_table(embedded_db, table_name, "bson")
    add_insert_trigger(
        embedded_db, table_name,
        f"IF NEW.epochs = 2000 THEN RAISE EXCEPTION 'refused: the client''s secret is % (a server echoing it)',"
        f" {sql.Literal(password).as_string(embedded_db)}; END IF; RETURN NEW;",
    )
    try:
        result = run_cli(*ramp_mode.argv(), "--dsn", target.keywords(password), "--table", table_name,
                         "--payload-format", "bson", *TINY_RAMP)
    finally:
        embedded_db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table_name)))
        embedded_db.execute(sql.SQL("DROP FUNCTION {}()").format(sql.Identifier(f"{table_name}_fault")))
    assert result.code == 0, result.err
    rows = read_csv(ramp_mode.csv_path(tmp_path))
    cause = ramp_mode.assert_failed(rows[1], "ERROR", failed=ramp_mode.concurrency)
    assert "refused: the client's secret is *** (a server echoing it) " in cause, cause
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "password=***" in report
    for text in (result.out, report, ramp_mode.csv_path(tmp_path).read_text(encoding="utf-8")):
        assert not GLUED_MASK.search(text), GLUED_MASK.search(text)
