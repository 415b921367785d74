"""The fuzz tests' hypothesis profile: bounded in time, the same run on every machine.

``relock`` (the default here) keeps the whole of tests/fuzz/ under a minute on
this project's machines: a fixed number of examples per property, no
per-example deadline (a slow machine must not fail a property), derandomised
so that CI's run is the one a developer sees, and no example database written
into the checkout. ``RELOCK_FUZZ_PROFILE=long`` runs many more examples, by
hand, to look for new crashes; each one found becomes a fixed regression case
in the ordinary tests (tests/fuzz/test_regressions.py).
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # a venv made before pyproject.toml named it; CI's always has it
    if os.environ.get("CI"):
        raise
    collect_ignore = ["test_parsers.py"]

    def pytest_report_header() -> str:
        return ("tests/fuzz/test_parsers.py not collected: hypothesis is not installed "
                "(pip install -e '.[test]')")
else:
    _QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("relock", max_examples=400, deadline=None, derandomize=True,
                              database=None, suppress_health_check=_QUIET, print_blob=True)
    settings.register_profile("long", max_examples=5000, deadline=None, database=None,
                              suppress_health_check=_QUIET, print_blob=True)
    settings.load_profile(os.environ.get("RELOCK_FUZZ_PROFILE", "relock"))
