"""Under mutation testing, the config tests' Hypothesis properties run fewer, fixed examples.

mutmut (``nox -s mutants sdn``) runs, for each mutant, every test that reaches the mutated function, and a
surviving mutant runs them all: the SDN group's property tests (300-400 examples each, 11 of its 13 s) made
that 12-15 s a survivor, too slow for the group's 2,400 mutants. mutmut 3 names the mutant it is testing in
the environment variable ``MUTANT_UNDER_TEST`` of the test process (``mutmut.mutation.trampoline.
set_mutant_under_test``, called in the forked child before its pytest run; a mutant's name holds
``__mutmut_``, while its own runs set ``stats``, ``fail``, ``list_all_tests`` or nothing). Only then does each
property here run at most ``MUTANT_EXAMPLES`` examples, derandomized (the same examples for every mutant, so a
verdict does not depend on luck and a rerun gives the same one), without a deadline, without the example
database, and without shrinking or explaining a failure: a mutant is killed by the first failing example, and
its minimal form is of no use there. The ``@example`` cases and every plain test run as always; an ordinary
``pytest`` run is untouched.

Hypothesis builds its table of Unicode characters (``st.text()``'s alphabet, 1.5-2 s) once per process and
caches it on disk in its home folder, which tests/conftest.py makes a fresh temporary one each session. mutmut
forks each mutant's run from a process that has run pytest before (by default the mutmut process itself, after
its clean run of the tests; with ``process_isolation = "forkserver"`` a server that only collects them first):
building the table in that process, as its session starts, hands it to every mutant's run, which would
otherwise build it again whenever its tests draw text.

The settings must be replaced per test: each property sets ``max_examples`` itself, which a settings profile
cannot override, and ``@settings`` cannot be applied a second time. Hypothesis reads a test's settings from
``_hypothesis_internal_use_settings`` when the test is called (hypothesis/core.py), so that is replaced, in the
forked child of that one mutant only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MUTANT_EXAMPLES = 30
_HERE = Path(__file__).parent


def _under_mutmut() -> bool:
    return "MUTANT_UNDER_TEST" in os.environ  # set ("" included) in every process mutmut runs tests in


def _under_a_mutant() -> bool:
    return "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", "")


@pytest.hookimpl(trylast=True)  # after Hypothesis's own: it warns (an error here) of work done while plugins load
def pytest_sessionstart(session: pytest.Session) -> None:
    if _under_mutmut():
        from hypothesis import strategies as st

        st.text().validate()  # builds, and keeps in this process, the Unicode tables st.text() draws from


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not _under_a_mutant():
        return
    from hypothesis import Phase, settings

    for item in items:
        test = getattr(item, "obj", None)
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if current is None or _HERE not in Path(str(item.path)).parents:
            continue
        test._hypothesis_internal_use_settings = settings(  # type: ignore[union-attr]
            current,
            max_examples=min(current.max_examples, MUTANT_EXAMPLES),
            derandomize=True,
            database=None,
            deadline=None,
            phases=(Phase.explicit, Phase.generate),
        )
