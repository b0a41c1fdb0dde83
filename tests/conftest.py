"""Test-suite defaults."""

from __future__ import annotations

import os

# The warm-book pools' disk cache (levgym.warm) is off in the tests, so a test's pool never
# starts from books another run saved; tests/test_warm.py turns it on in a temporary folder.
os.environ["LEVGYM_WARM_CACHE"] = "off"
