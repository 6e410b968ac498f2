"""Process settings of the entry scripts."""
from __future__ import annotations

import sys

import pytest

from uer.utils.runtime import tune_cpu_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_allocator_tuned_unless_the_user_chose_one(monkeypatch):
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_CONF", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    assert tune_cpu_allocator() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert tune_cpu_allocator() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert tune_cpu_allocator() is False
