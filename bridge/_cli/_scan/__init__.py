"""``python -m bridge scan PATH``: which modules still use eventlet, how, and in what order to move.

A static scan: every ``*.py`` file under PATH is parsed (``ast``), nothing is
imported or run. The modules' imports, names and calls are followed across
the project, so a module is seen as green when it uses eventlet directly,
through a project module that re-exports or wraps it (a *shim*), or
implicitly (stdlib calls that cooperate only under ``monkey_patch()``). Each
module gets a status:

* ``green``: green (any of the three ways) and no async code;
* ``mixed``: green and async code (``async def``, asyncio);
* ``async``: async code and nothing green;
* ``other``: neither (not counted in the progress).

Progress = async / (green + mixed + async), over the service's modules; test
modules are counted apart (they move last, with the pytest plugin). Also
reported: blocking calls inside ``async def`` (``--check`` makes them fail
the run; ``# bridge: ok`` silences a line), hub selection in code, the
module graph and a migration order, the change since a ``--baseline``.
Files that cannot be read or parsed are reported and skipped, never fatal.

The package's modules, in the order a scan runs them: ``_run`` (files and
module names), ``_parse`` (one module's facts), ``_graph`` (names and calls
followed across modules), ``_findings`` (per-module kinds, the lint, the
hub), ``_plan`` (roles, weights, order), ``_report`` (the data and JSON),
``_text`` and ``_html`` (the outputs), ``_main`` (the command line).
``_tables`` holds what the scanner knows about eventlet and the stdlib.
"""

from bridge._cli._scan._html import write_html as write_html
from bridge._cli._scan._main import main as main
from bridge._cli._scan._parse import parse as parse
from bridge._cli._scan._report import ModuleReport as ModuleReport
from bridge._cli._scan._report import ScanReport as ScanReport
from bridge._cli._scan._run import scan as scan
from bridge._cli._scan._tables import REPLACEMENTS as REPLACEMENTS
from bridge._cli._scan._text import write_text as write_text

__all__ = (
    "REPLACEMENTS",
    "ModuleReport",
    "ScanReport",
    "main",
    "parse",
    "scan",
    "write_html",
    "write_text",
)
