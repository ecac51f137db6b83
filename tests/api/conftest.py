"""API tests: a per-test timeout (server start-up included) unless a test sets its own."""

from __future__ import annotations

import pytest

API_TEST_TIMEOUT = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and "/tests/api/" in str(item.path):
            item.add_marker(pytest.mark.timeout(API_TEST_TIMEOUT))
