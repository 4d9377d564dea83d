"""The fault suite's shared helpers live in conftest_faults; this file reports the case count."""

from conftest_faults import pytest_terminal_summary  # noqa: F401 - the hook, registered here
