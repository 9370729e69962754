"""Passwords out of everything pgstress prints or writes: DSNs shown redacted, messages scrubbed.

A DSN is read with libpq's own parser (psycopg.conninfo), for URLs and key=value strings alike,
so what counts as its password is exactly what libpq would send. A DSN libpq cannot parse is
never shown at all: libpq's own parse errors quote pieces of it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

import psycopg
import psycopg.conninfo

MASK = "***"
UNPARSEABLE = "(a connection string libpq cannot parse; not shown, it may hold a password)"

# Belt and braces for text that quotes a connection string pgstress never saw (a server echoing one).
_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_URL_SCHEME = re.compile(r"^postgres(?:ql)?://", re.I)


def parse_dsn(dsn: str) -> dict[str, str] | None:
    """libpq's reading of a DSN (URL or key=value), or None when libpq cannot parse it."""
    try:
        return {key: str(value) for key, value in psycopg.conninfo.conninfo_to_dict(dsn).items() if value is not None}
    except psycopg.ProgrammingError:
        return None


def _url_password_texts(dsn: str) -> list[str]:
    """The password of a URL as written, raw and percent-decoded: libpq's reading (user info ends at the first
    '@' or '/') and the reading a person means when a raw '@' or '/' sits in it (it ends at the last '@')."""
    match = _URL_SCHEME.match(dsn)
    if match is None:
        return []
    rest = dsn[match.end():]
    found = []
    first_end = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    for end in (first_end if first_end >= 0 and rest[first_end] == "@" else -1, rest.rfind("@")):
        user_info = rest[:end] if end >= 0 else ""
        if ":" in user_info:
            written = user_info.split(":", 1)[1]
            found += [written, unquote(written, errors="ignore")]
    return found


def dsn_secrets(dsn: str | None) -> list[str]:
    """Every text of a DSN that is, or may be, its password: libpq's value and the forms it is written in."""
    if not dsn:
        return []
    params = parse_dsn(dsn) or {}
    found = [params.get("password", ""), *_url_password_texts(dsn)]
    return [secret for secret in dict.fromkeys(found) if secret]


def redact_dsn(dsn: str) -> str:
    """A DSN as libpq reads it, in key=value form, its password shown as ***."""
    params = parse_dsn(dsn)
    if params is None:
        return UNPARSEABLE
    secrets = dsn_secrets(dsn)
    shown = {key: MASK if key == "password" else scrub(value, *secrets) for key, value in params.items()}
    return psycopg.conninfo.make_conninfo("", **shown)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every given secret where it stands as a word of its own, and any password=... or URL password.

    A word of its own: between spaces, quotes, brackets or punctuation (`is p.`, `"p"`, `(p)`, `user:p@host`),
    never inside a longer word. So the password `p` is masked in "secret is p" and "password=p", but
    "port 5432" stays as it is: masking its p would tell anyone reading "***ort" what the password is. Each
    secret is also removed in the form a one-line message gives it (its whitespace runs as one space), so
    scrubbing before or after a message is flattened to one line comes to the same.
    """
    forms = {form for secret in secrets if secret for form in (secret, " ".join(secret.split())) if form.strip()}
    for secret in sorted(forms, key=len, reverse=True):
        text = _as_a_word(secret).sub(MASK, text)
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", text)
    return _KEYWORD_PASSWORD.sub(rf"\g<head>{MASK}", text)


# What may stand right before and right after a word of its own (the start and the end of the text too).
_WORD_BEFORE = r"(?<![^\s'\"`(\[{<,;:=])"
_WORD_AFTER = r"(?![^\s'\"`)\]}>,;:.!?@])"


def _as_a_word(secret: str) -> re.Pattern[str]:
    """The secret's occurrences that are not part of a longer word. A secret beginning (ending) with whitespace
    brings its own boundary on that side, so that side is not checked: it is masked wherever it stands."""
    before = "" if secret[0].isspace() else _WORD_BEFORE
    after = "" if secret[-1].isspace() else _WORD_AFTER
    return re.compile(before + re.escape(secret) + after)


def secrets_in_use(*dsns: str | None) -> tuple[str, ...]:
    """Every password this process may connect with: those of the given DSNs, PG_DSN's and PGPASSWORD."""
    found = [secret for dsn in (*dsns, os.environ.get("PG_DSN")) for secret in dsn_secrets(dsn)]
    found.append(os.environ.get("PGPASSWORD") or "")
    return tuple(secret for secret in dict.fromkeys(found) if secret)
