"""`python -m pgstress`: the same command as `pgstress` and `python main.py`."""

import sys

from pgstress.entry import main

sys.exit(main())
