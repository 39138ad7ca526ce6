"""Suite-wide hygiene shared by every tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings
from loguru import logger

# Property tests draw the same examples on every run of `make test` (derandomize): a
# suite whose result depends on the run is a flaky suite, and CI must not turn red on
# a new random draw. `make soak` explores instead (HYPOTHESIS_PROFILE=explore): a
# counterexample found there becomes an explicit test.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(autouse=True)
def _loguru_handlers_do_not_leak() -> Iterator[None]:
    """Remove the loguru sinks a test added (``configure_logging`` in a CLI test, say).

    Why: a sink left behind that writes to a stream pytest has since closed makes every
    later log call print "Logging error in Loguru Handler" into the next test's captured
    stderr, so a test of our own stderr output fails for another test's reason. loguru
    has no public list of its handlers; its core's dict is the only place to read them.
    """
    before = set(logger._core.handlers)  # type: ignore[attr-defined]
    yield
    for handler_id in set(logger._core.handlers) - before:  # type: ignore[attr-defined]
        logger.remove(handler_id)
