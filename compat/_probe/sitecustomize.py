"""Records which eventlet hub each process of a library's test run really used.

``compat/libs_suite.py`` puts this directory first on PYTHONPATH for the test runs, so every
Python process of the run (stestr's workers, and processes the tests start) imports it at
start-up. It does nothing unless ``COMPAT_HUB_PROBE_DIR`` is set. At exit it writes one
line, ``<pid> <hub class>`` (or ``<pid> none`` when no hub was made in the main thread), to
a file of its own in that directory. The gate then checks that every process that made a
hub made the one EVENTLET_HUB names: a suite (or library) that calls ``use_hub()`` with an
explicit hub in code would silently ignore the variable, and the comparison would be moot.

It imports nothing of eventlet itself (that would change the import order the suite sees);
it only looks at ``sys.modules`` at exit. Processes that leave through ``os._exit`` (forked
children) write nothing.
"""

import atexit
import os
import sys

_DIR = os.environ.get("COMPAT_HUB_PROBE_DIR")


def _record() -> None:
    hubs = sys.modules.get("eventlet.hubs")
    hub = getattr(getattr(hubs, "_threadlocal", None), "hub", None)
    name = "none" if hub is None else f"{type(hub).__module__}.{type(hub).__qualname__}"
    try:
        with open(os.path.join(_DIR, f"{os.getpid()}.txt"), "w") as out:
            out.write(f"{os.getpid()} {name}\n")
    except OSError:
        pass  # the run directory is gone: nobody is left to read the record


if _DIR:
    atexit.register(_record)
