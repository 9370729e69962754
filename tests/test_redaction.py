"""Passwords out of everything printed: DSNs read with libpq's own parser and redacted, messages scrubbed.

Passwords made of every printable ASCII character, in key=value strings (quoted as libpq quotes them),
in URLs (percent-encoded, and raw where libpq reads a raw password), with one host or several.
"""

from __future__ import annotations

from urllib.parse import quote

import psycopg.conninfo
import pytest

from pgstress.redaction import UNPARSEABLE, dsn_secrets, parse_dsn, redact_dsn, scrub
from pgstress.target import describe_target

PRINTABLE = "".join(chr(code) for code in range(32, 127))  # space to ~, quotes, backslash, % and @ included
# libpq reads a URL's raw password up to the first '@' or '/', decodes '%xx' in it and refuses a raw space
RAW_IN_URL = "".join(char for char in PRINTABLE if char not in "@/% ")

DSNS = {
    "key=value": psycopg.conninfo.make_conninfo("", host="db.example", port="5433", user="bob",
                                                password=PRINTABLE, dbname="app"),
    "URL, percent-encoded": f"postgresql://bob:{quote(PRINTABLE, safe='')}@db.example:5433/app",
    "URL, several hosts": f"postgres://bob:{quote(PRINTABLE, safe='')}@h1:5432,h2:5433/app?target_session_attrs=any",
    "URL, raw": f"postgresql://bob:{RAW_IN_URL}@db.example/app",
}


@pytest.mark.parametrize("dsn", DSNS.values(), ids=DSNS.keys())
def test_every_printable_password_is_redacted_as_libpq_reads_it(dsn: str) -> None:
    password = psycopg.conninfo.conninfo_to_dict(dsn)["password"]
    assert password in (PRINTABLE, RAW_IN_URL)
    shown = redact_dsn(dsn)
    assert "password=***" in shown
    assert psycopg.conninfo.conninfo_to_dict(shown)["password"] == "***"  # still a DSN libpq reads
    assert psycopg.conninfo.conninfo_to_dict(shown)["user"] == "bob"
    for secret in dsn_secrets(dsn):  # the value and the text it is written as in the DSN
        assert secret not in shown
    assert password in dsn_secrets(dsn) and (parse_dsn(dsn) or {}).get("password") == password
    assert password not in describe_target(dsn)
    echoed = f"server says: bad password {password!s} for {dsn}"
    assert password not in scrub(echoed, *dsn_secrets(dsn))
    assert quote(PRINTABLE, safe="") not in scrub(echoed, *dsn_secrets(dsn))


def test_several_hosts_are_kept_whole() -> None:
    shown = psycopg.conninfo.conninfo_to_dict(redact_dsn(DSNS["URL, several hosts"]))
    assert (shown["host"], shown["port"], shown["target_session_attrs"]) == ("h1,h2", "5432,5433", "any")


def test_a_dsn_libpq_cannot_parse_is_never_shown() -> None:
    broken = f"postgresql://bob:{PRINTABLE}@db.example/app"  # a raw '%' that is no %xx: libpq refuses it
    with pytest.raises(psycopg.ProgrammingError, match="percent"):
        psycopg.conninfo.conninfo_to_dict(broken)  # (libpq's own message quotes the password)
    assert redact_dsn(broken) == UNPARSEABLE
    assert describe_target(broken) == "the server given by the DSN (which libpq cannot parse)"


def test_a_password_libpq_reads_as_a_host_is_scrubbed_too() -> None:
    """A raw '/' ends libpq's user info: `bob:pa/ss@h` is host bob, port pa, database ss@h. Not a password to
    libpq, but the user meant one: the text up to the last '@' is scrubbed as well."""
    dsn = "postgresql://bob:pa/ss-9f1@db.example/app"
    assert "password" not in psycopg.conninfo.conninfo_to_dict(dsn)
    assert "pa/ss-9f1" in dsn_secrets(dsn)
    assert "pa/ss-9f1" not in scrub("could not connect to bob:pa/ss-9f1@db.example", *dsn_secrets(dsn))


def test_scrub_removes_known_and_embedded_passwords() -> None:
    text = scrub("failed for postgresql://x:abc@h/d with hunter2 and password=zzz", "hunter2")
    assert "hunter2" not in text and "abc" not in text and "zzz" not in text


def test_a_password_is_scrubbed_also_from_a_message_flattened_to_one_line() -> None:
    password = "two  spaces\tand\na newline"
    flattened = " ".join(f"server said: {password}!".split())
    assert "two" not in scrub(flattened, password) and "newline" not in scrub(flattened, password)


# Short passwords of every character class: where the mask lands must not tell what the password is.
SHORT = ["p", "t", "5", "ü", ".", "%", "@", "ab", "on", "p1", "42", "a!", "!a", "#$", "pass", "port"]
READABLE = ('connection to server at "127.0.0.1", port 55437 failed: FATAL:  password authentication failed'
            ' for user "postgres" (application pgstress, 2 of 54321 tries, socket /tmp/.s.PGSQL.5432)')


@pytest.mark.parametrize("password", SHORT)
def test_a_short_password_is_not_masked_inside_other_words(password: str) -> None:
    """libpq's message is left as it is unless the password stands in it as a word of its own."""
    assert scrub(READABLE, password) == (READABLE.replace(" port ", " *** ") if password == "port" else READABLE)


@pytest.mark.parametrize("password", SHORT)
def test_a_short_password_is_masked_where_it_is_quoted(password: str) -> None:
    """In a key=value string (quoted as libpq quotes it), a URL (percent-encoded or raw), and a server's message
    quoting it as a word of its own: masked there, and the words around it kept whole."""
    keywords = psycopg.conninfo.make_conninfo("", host="h", port="5432", user="postgres", password=password)
    url = f"postgresql://postgres:{quote(password, safe='')}@h:5432/app"
    raw_url = f"postgresql://postgres:{password}@h:5432/app"
    for quoted, masked in [
        (keywords, psycopg.conninfo.make_conninfo("", host="h", port="5432", user="postgres", password="***")),
        (url, "postgresql://postgres:***@h:5432/app"),
        (raw_url, "postgresql://postgres:***@h:5432/app"),
        (f"the client's secret is {password} (a server echo)", "the client's secret is *** (a server echo)"),
        (f'invalid input syntax for type integer: "{password}"', 'invalid input syntax for type integer: "***"'),
        (f"{password}: got {password}.", "***: got ***."),
    ]:
        secrets = dsn_secrets(url) + dsn_secrets(raw_url) if quoted.startswith("postgresql") else [password]
        shown = scrub(f"{READABLE} {quoted}", *secrets)
        assert shown.endswith(masked), (password, quoted, shown)
        if password not in READABLE.split():
            assert shown == f"{READABLE} {masked}"


def test_a_password_is_masked_as_a_word_and_kept_out_of_others() -> None:
    password = "hunter2"
    assert scrub(f"echo {password}; {password}s are in xhunter2y", password) == "echo ***; hunter2s are in xhunter2y"
    assert scrub("the server at 127.0.0.1. (p.s.)", ".") == "the server at 127.0.0.1. (p.s.)"
    assert scrub("secret is ' x'.", " x") == "secret is '***'."  # its own space is its boundary
