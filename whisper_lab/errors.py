"""One error type for everything a user can fix, and the wrapper that prints it.

The numbered scripts are for students: a mistake on their side (a missing file,
a typo in a flag) must end in one readable line that says what to do, not in a
Python traceback. Library code raises `LabError`; `run_cli` turns it into
`error: <message>` on stderr and exit status 1.
"""

from __future__ import annotations

import sys
from typing import Callable


class LabError(Exception):
    """A problem the user can fix; the message says how."""


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a script's main() and exit with a one-line error on LabError or Ctrl-C."""
    try:
        code = main()
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
