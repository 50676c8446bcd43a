"""The check's verdict as a JUnit XML test case, which CI systems read (junitparser).

One test suite `autotune check` with one test case named after the study: passed, or a
`failure` whose message is the verdict's sentence (the paired ratio and its interval);
the sentence is the case's system-out too, and the race's seconds its time.
"""

from __future__ import annotations

from pathlib import Path

from junitparser import Failure, JUnitXml, TestCase, TestSuite

from autotune.check.verdict import CheckVerdict

SUITE = "autotune check"


def write_junit(path: Path, study_name: str, verdict: CheckVerdict, seconds: float) -> None:
    """Write `verdict` of the check of `study_name` to `path` as JUnit XML."""
    case = TestCase(f"recommendation of {study_name}", classname="autotune.check",
                    time=round(seconds, 3))
    if not verdict.passed:
        case.result = [Failure(verdict.sentence, "slower")]
    case.system_out = verdict.sentence
    suite = TestSuite(SUITE)
    suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)
