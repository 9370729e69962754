"""pgstress: how PostgreSQL copes when one row carries a huge payload."""

__version__ = "0.1.0"
