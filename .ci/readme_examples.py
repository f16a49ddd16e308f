"""Run named ```python blocks of the README in this process (used by .ci/wheel_check.sh).

    python readme_examples.py README.md quickstart xarray radar

Blocks are chosen by what they contain: the quickstart loads the bike flows, the xarray example
builds a DataArray, the radar example loads the radar. It checks that darts_mim is the installed
package, not a clone's, and prints how long each block took.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

KEYS = {"quickstart": "load_bike_flows()", "xarray": "xr.DataArray(", "radar": "load_radar()"}


def main() -> int:
    readme, names = Path(sys.argv[1]), sys.argv[2:]
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    import darts_mim

    assert "site-packages" in darts_mim.__file__, darts_mim.__file__
    print("darts_mim", darts_mim.__version__, "from", darts_mim.__file__)
    for name in names:
        (code,) = [b for b in blocks if KEYS[name] in b]
        t0 = time.perf_counter()
        exec(compile(code, f"README {name}", "exec"), {"__name__": "__main__"})
        print(f"README {name}: ok in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
