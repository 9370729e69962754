"""What a run produces: CSV, markdown report, charts, run record, terminal; the analysis they share."""
