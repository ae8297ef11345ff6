"""The names of eventlet's monkey patches, shared by ``scan`` and ``doctor``.

``eventlet.monkey_patch()`` takes one keyword per patch; these are the ones a
migration cares about. The scanner says which patch a blocking stdlib call
needs to cooperate (static view); the doctor says which patches this process
has (run-time view). Both print these exact names, so a team can read one
report against the other.
"""

from __future__ import annotations

__all__ = ("PATCHES", "describe")

# Patch name -> what it turns green. The keys are eventlet.monkey_patch()'s
# keywords (and eventlet.patcher.is_monkey_patched()'s argument), in the
# order eventlet applies them.
PATCHES: dict[str, str] = {
    "os": "os.read/os.write on pipes, os.wait/os.waitpid",
    "select": "select.select/poll/epoll and the selectors module",
    "socket": "socket, ssl and every client built on them (http.client, urllib, requests, PyMySQL)",
    "thread": "threading, _thread and queue: threads become greenthreads, locks green locks",
    "time": "time.sleep",
    "subprocess": "subprocess.Popen and its helpers (run, call, check_output)",
}


def describe(patch: str) -> str:
    """One line for a patch name: ``'time' (time.sleep)``.

    :param patch: one of :data:`PATCHES`.
    :raises KeyError: for a name that is not a patch this module knows.
    """
    return f"{patch!r} ({PATCHES[patch]})"
