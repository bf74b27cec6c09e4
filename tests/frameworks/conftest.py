"""Fixtures for the framework tests: plain asserts in the shared contract get pytest's messages."""

import pytest

# Must run before ``contract`` is first imported (conftest files load before test modules).
pytest.register_assert_rewrite("tests.frameworks.contract")
