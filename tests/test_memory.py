"""mdt.memory: a training process keeps the CPU memory it frees, so a step's large tensors
do not fault their pages in again every iteration; a user's own allocator settings win."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mdt.memory import user_chose

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# Allocates, writes and frees a 64 MiB buffer, as a training step does with its large
# tensors, round after round, and prints how many pages the last round faulted in (the
# kernel's count). glibc 2.36 places the first few rounds' blocks apart before it reuses
# one (its aligned allocations leave a remainder); from then on nothing is faulted in.
LAST_ROUND_FAULTS = """
import resource, sys
import torch
from mdt.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def round_trip():
    buffer = torch.empty(16 * 1024 * 1024)  # 64 MiB of float32
    buffer.fill_(1.0)
    del buffer
for _ in range(12):
    round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
round_trip()
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 64 * 1024 * 1024 // 4096


def last_round(mode: str, **environment: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | environment
    out = subprocess.run([sys.executable, "-c", LAST_ROUND_FAULTS, mode], capture_output=True, text=True, env=env, check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


def test_freed_memory_is_reused_without_faulting_its_pages_in_again():
    kept, faults = last_round("keep")
    assert kept and faults < PAGES // 10
    kept, faults = last_round("default")  # glibc's default: unmapped on free, faulted in again
    assert not kept and faults > PAGES // 2


@pytest.mark.parametrize("setting", [{"MALLOC_MMAP_MAX_": "65536"}, {"MDT_KEEP_FREED_MEMORY": "0"}])
def test_a_users_own_setting_is_left_alone(setting):
    kept, faults = last_round("keep", **setting)
    assert not kept and faults > PAGES // 2


@pytest.mark.parametrize(
    ("environ", "chose"),
    [
        ({}, False),
        ({"MDT_KEEP_FREED_MEMORY": "0"}, True),
        ({"MDT_KEEP_FREED_MEMORY": "1"}, False),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}, True),
        ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, False),
        ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, True),
        ({"LD_PRELOAD": "/usr/lib/libfaketime.so"}, False),
    ],
)
def test_user_chose(environ, chose):
    assert user_chose(environ) is chose
