"""pgstress entry point: `python main.py --mode sync|async ...`."""

import sys

from pgstress.cli import main

if __name__ == "__main__":
    sys.exit(main())
