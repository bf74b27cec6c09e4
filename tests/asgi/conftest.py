"""Fixtures for the ASGI tests (the server fixtures come from tests/conftest.py)."""

import pytest

# The framework tests here reuse the shared HTTP contract; its plain asserts get pytest's
# messages only if it is registered before its first import (tests/frameworks does too).
pytest.register_assert_rewrite("tests.frameworks.contract")
