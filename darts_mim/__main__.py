"""``python -m darts_mim``: the ``darts-mim`` command line (:func:`darts_mim.cli.main`), for
environments where the console script is not on ``PATH``."""

import sys

from darts_mim.cli import main

if __name__ == "__main__":
    sys.exit(main())
