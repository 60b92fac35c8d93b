import resource
import subprocess
import sys

FAULTS = """
import os, resource, sys, torch
from mwa_lightning.training.malloc import malloc_returns_memory, tune_malloc

def faults(n=20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(8 << 20, dtype=torch.uint8).sum()  # allocate, touch and free 8 MiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

malloc_returns_memory()  # glibc's behaviour for big blocks: mapped on allocation, unmapped on free
faults(); untuned = faults()
os.environ["MWA_MALLOC_TUNING"] = "0"  # switched off: nothing changes
applied = tune_malloc()
faults(); off = faults()
del os.environ["MWA_MALLOC_TUNING"]
tune_malloc()
faults()  # the first call grows the heap once
tuned = min(faults() for _ in range(3))  # the least of three: a busy machine adds stray faults now and then
print(applied, untuned, off, tuned)
"""


def test_tune_malloc_stops_page_faults_on_big_tensors():
    # in a fresh process: what other tests left in this one's heap would blur the counts
    result = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    applied, untuned, off, tuned = result.stdout.split()
    untuned, off, tuned = int(untuned), int(off), int(tuned)
    pages = 20 * (8 << 20) // resource.getpagesize()  # what 20 fresh 8 MiB mappings fault in
    assert applied == "False"
    assert tuned < pages // 10, (tuned, untuned, off)  # untuned, every allocation faults its pages in again
    assert off > 2 * tuned and untuned > 2 * tuned, (tuned, untuned, off)
