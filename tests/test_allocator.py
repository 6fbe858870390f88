"""``tune_allocator``: applied once, reported, recorded in every output's environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from facebench import allocator
from facebench.provenance import environment


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """A process where tune_allocator has not run yet, with mallopt recorded instead of called."""
    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(allocator, "_allocator_name", lambda: "glibc 2.36")
    for variable in allocator.USER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return calls


def test_reports_what_it_did_and_second_call_is_a_no_op(fresh) -> None:
    assert allocator.allocator_state()["mallopt"] == {}
    first = allocator.tune_allocator()
    assert first["allocator"] == "glibc 2.36"
    assert first["mallopt"] == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 2**30}
    assert sorted(fresh) == sorted([(allocator.M_MMAP_MAX, 0), (allocator.M_TRIM_THRESHOLD, 2**30)])
    assert allocator.tune_allocator() is first
    assert len(fresh) == 2  # mallopt not called again
    assert environment()["allocator"] == first


def test_user_settings_win(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    state = allocator.tune_allocator()
    assert state["mallopt"] == {} and "MALLOC_MMAP_THRESHOLD_" in state["note"]
    assert fresh == []


def test_other_allocator_left_alone(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_allocator_name", lambda: "jemalloc (preloaded)")
    assert allocator.tune_allocator()["mallopt"] == {}
    assert fresh == []


@pytest.mark.skipif(not allocator._allocator_name().startswith("glibc"), reason="glibc malloc only")
@pytest.mark.parametrize("tuned", [False, True])
def test_freed_blocks_are_reused_not_faulted_in_anew(tuned: bool) -> None:
    """48 MB buffers (above glibc's 32 MiB mmap-threshold cap) allocated and freed 20 times: glibc's default
    maps each anew and faults in all its pages; tuned, the heap block is reused."""
    code = f"""
import resource
from facebench.allocator import tune_allocator
if {tuned}:
    tune_allocator()
bytearray(48_000_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    bytearray(48_000_000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    pages = 20 * 48_000_000 // 4096
    assert (faults < pages // 10) if tuned else (faults > pages // 2)
