"""Passwords out of everything printed: DSNs redacted, messages scrubbed."""

from __future__ import annotations

import pytest

from pgstress.redaction import dsn_password, redact_dsn, scrub


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://bob:hunter2@db.example:5433/app", "postgresql://bob:***@db.example:5433/app"),
        ("postgresql://bob@db/app", "postgresql://bob@db/app"),
        ("host=db user=bob password=hunter2 dbname=app", "host=db user=bob password=*** dbname=app"),
        ("host=db password='hun ter2' dbname=app", "host=db password=*** dbname=app"),
    ],
)
def test_redact_dsn(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected
    assert "hunter2" not in redact_dsn(dsn) and "hun ter2" not in redact_dsn(dsn)


def test_scrub_removes_known_and_embedded_passwords() -> None:
    assert dsn_password("postgresql://bob:hunter2@db/app") == "hunter2"
    text = scrub("failed for postgresql://x:abc@h/d with hunter2 and password=zzz", "hunter2")
    assert "hunter2" not in text and "abc" not in text and "zzz" not in text
