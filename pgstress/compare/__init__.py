"""`pgstress compare A B ...`: runs side by side, each against the first, with a verdict per measure that
never claims more than the repetitions support (loading.py reads the runs, verdicts.py judges,
render.py writes the markdown, the terminal table and the chart, command.py is the subcommand)."""
