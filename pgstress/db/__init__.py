"""The database side: where the server comes from, the table, the two drivers, the server's own measures."""
