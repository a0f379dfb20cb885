"""Peak GPU memory through NVML. No GPU here: pynvml is replaced by a fake module (the only mock in
the suite), which reports per-process memory the way NVML does; the summing over the run's process
tree and the peak tracking are assay's own code under test."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass

from assay.runner import process


@dataclass
class _Proc:
    pid: int
    usedGpuMemory: int | None  # noqa: N815 - NVML's field name


def _fake_nvml(per_device: list[list[_Proc]]) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    mod.NVMLError = type("NVMLError", (Exception,), {})
    mod.nvmlInit = lambda: None
    mod.nvmlDeviceGetCount = lambda: len(per_device)
    mod.nvmlDeviceGetHandleByIndex = lambda i: i
    mod.nvmlDeviceGetComputeRunningProcesses = lambda h: per_device[h]
    return mod


def test_gpu_memory_sums_only_the_runs_processes_across_devices(monkeypatch):
    me = os.getpid()
    fake = _fake_nvml([[_Proc(me, 3 << 30), _Proc(1, 10 << 30)], [_Proc(me, 1 << 30), _Proc(me + 1, None)]])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    used = process._nvml()
    assert used is not None
    assert used({me}) == 4 << 30
    assert used({999_999}) == 0


def test_peak_gpu_memory_is_the_maximum_over_samples(monkeypatch):
    me = os.getpid()
    device: list[_Proc] = [_Proc(me, 2 << 30)]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([device]))
    watch = process._MemoryWatch(me)
    watch.sample()
    device[0] = _Proc(me, 5 << 30)
    watch.sample()
    device[0] = _Proc(me, 1 << 30)
    watch.sample()
    assert watch.peak_gpu == 5 << 30
    assert watch.peak_rss > 0


def test_without_nvml_gpu_memory_is_not_recorded(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as when the library is absent
    assert process._nvml() is None
