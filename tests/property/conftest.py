"""Hypothesis profiles for the hostile-input corpus.

`ci` (the default, used by `make test`): a bounded, reproducible run (derandomized, no example database), so a
failure in CI fails the same way on a laptop. `long` (`make fuzz`, or HYPOTHESIS_PROFILE=long): many more
examples, randomized, for hunting before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=_SLOW_IS_FINE
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, derandomize=False, suppress_health_check=_SLOW_IS_FINE
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
