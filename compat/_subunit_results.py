"""Per-test outcomes from a subunit v2 stream, as JSON (run by a library's venv).

``compat/libs_suite.py`` runs this with the interpreter of a library's test venv, where
stestr has installed python-subunit and testtools, so the gate script itself stays standard
library only. Usage: ``python _subunit_results.py RUN.subunit`` prints one JSON object,
``{test id: [status, message]}``, where status is subunit's (``success``, ``fail``,
``skip``, ``xfail``, ``uxsuccess``, ``inprogress``) and message is the last line of the
traceback (or the skip reason). A stream cut short by a kill is read up to the cut; the
tests that had started and not finished come out as ``inprogress``.
"""

import json
import sys

import subunit
import testtools


def _message(details: dict) -> str:
    for key in ("traceback", "reason"):
        if key in details:
            try:
                text = details[key].as_text()
            except Exception:  # undecodable details: the status is what matters
                return ""
            lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
            return lines[-1][:300] if lines else ""
    return ""


def main(path: str) -> None:
    found: dict[str, list[str]] = {}

    def on_test(test: dict) -> None:
        status = test["status"]
        if status == "exists":  # a listing entry, not an outcome
            return
        if test["id"] == "subunit.parser":  # the torn last packet of a killed run
            return
        found[test["id"]] = [status, _message(test["details"])]

    result = testtools.StreamToDict(on_test)
    with open(path, "rb") as stream:
        case = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()  # flushes the tests still in progress
    json.dump(found, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
