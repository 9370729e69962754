"""Passwords out of everything pgstress prints or writes: DSNs shown redacted, messages scrubbed."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

import psycopg.conninfo

_URL_PASSWORD = re.compile(r"(?P<head>[a-z0-9+.-]+://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.I)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact_dsn(dsn: str) -> str:
    """A DSN (URL or key=value form) with its password replaced by ***."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            user = parts.username or ""
            netloc = f"{user}:***@{host}"
            dsn = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return _KEYWORD_PASSWORD.sub(r"\g<head>***", dsn)


def dsn_password(dsn: str | None) -> str | None:
    """The password a DSN carries, if any (to scrub it from messages)."""
    if not dsn:
        return None
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        match = _URL_PASSWORD.search(dsn) or _KEYWORD_PASSWORD.search(dsn)
        return match.group("secret") if match else None
    return str(password) if password else None


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every given secret, and any password=... or URL password, from text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)
    return _KEYWORD_PASSWORD.sub(r"\g<head>***", text)


def secrets_in_use(*dsns: str | None) -> tuple[str, ...]:
    """Every password this process may connect with: those of the given DSNs, PG_DSN's and PGPASSWORD."""
    found = [dsn_password(dsn) for dsn in (*dsns, os.environ.get("PG_DSN"))]
    found.append(os.environ.get("PGPASSWORD"))
    return tuple(dict.fromkeys(secret for secret in found if secret))
