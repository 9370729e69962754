"""pgstress entry point: `python main.py --mode sync|async ...`."""

import sys

from pgstress.entry import main

if __name__ == "__main__":
    sys.exit(main())
