"""On a real NVIDIA GPU: peak GPU memory is recorded and a CUDA out-of-memory error is told apart.

Skipped where PyTorch sees no CUDA device (CI has none); run on a GPU machine with
`python -m pytest tests/gpu`. Nothing here is faked: the script allocates real device memory.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

HOLD = """\
import time, torch
x = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")  # 4 GiB, held while assay samples
x.fill_(1)
torch.cuda.synchronize()
time.sleep(3)
print("val_loss:", float(x[:10].float().mean()))
"""

OOM = """\
import torch
print("epoch 1", flush=True)
x = torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # 1 PiB: more than any GPU holds
print("val_loss: 1")
"""


def _record(exp) -> dict:
    (path,) = (exp.path / "runs").glob("*/run.json")
    return json.loads(path.read_text())


def test_peak_gpu_memory_of_the_run_is_recorded(lab, make_experiment, cli):
    exp = make_experiment(HOLD, metric="val_loss", goal="min")
    out = cli("run", "exp", "hold", timeout=300)
    rec = _record(exp)
    print("peak_gpu_mem", rec.get("peak_gpu_mem"), out.stdout)
    assert out.returncode == 0 and rec["status"] == "ok", out.stdout
    assert rec["peak_gpu_mem"] is not None and 4 << 30 <= rec["peak_gpu_mem"] < 8 << 30


def test_cuda_out_of_memory_is_status_oom_and_exit_1(lab, make_experiment, cli):
    exp = make_experiment(OOM, metric="val_loss", goal="min")
    out = cli("run", "exp", "oom", timeout=300)
    rec = _record(exp)
    print(rec["status"], rec["reason"])
    assert out.returncode == 1 and rec["status"] == "oom", out.stdout
    assert "out of memory" in rec["reason"].lower()


def test_system_metrics_of_a_gpu_run_hold_its_gpu_memory_and_utilisation(lab, make_experiment, cli):
    exp = make_experiment(HOLD, metric="val_loss", goal="min")
    out = cli("run", "exp", "sys", timeout=300, env={"ASSAY_SYS_INTERVAL": "0.5"})
    assert out.returncode == 0, out.stdout
    (metrics,) = (exp.path / "runs").glob("*/metrics.jsonl")
    sys_events = [json.loads(line) for line in metrics.read_text().splitlines() if '"sys"' in line]
    mem = [e["m"]["sys/gpu_mem_mb"] for e in sys_events if "sys/gpu_mem_mb" in e.get("m", {})]
    print("sys samples", len(sys_events), "gpu_mem_mb", mem[-3:])
    assert mem and max(mem) >= 4096  # the 4 GiB the script holds, seen by NVML while it runs
    assert any("sys/gpu_util" in e["m"] for e in sys_events)
