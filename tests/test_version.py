"""Smoke test: the package imports and reports its version."""

import levgym


def test_version():
    assert levgym.__version__.count(".") == 2
