"""The shipped executor conformance checks (assay.testing.executors), run against the local pool
and Ray (a real local Ray instance, its workers given the code as a snapshot)."""

import pytest

from assay.sweep.executors import LocalPool, get_executor
from assay.testing import executors as conformance


@pytest.fixture(params=["local", "ray"])
def make(request):
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        return lambda lab, slots: get_executor("ray", lab, slots, cpus=1)
    return lambda lab, slots: LocalPool(lab, slots)


@pytest.mark.parametrize("check", conformance.CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_executor_passes_the_shipped_conformance_check(check, make, tmp_path):
    check(make, tmp_path)


def test_local_pool_passes_the_gpu_per_slot_check(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # no GPUs here: the pool reads the variable, as with real ones
    conformance.check_each_slot_sees_its_own_gpu(lambda lab, slots: LocalPool(lab, slots), tmp_path)


def test_a_broken_executor_fails_the_conformance_checks(tmp_path):
    """The checks can fail: an executor that reports a crash as an exception is caught."""
    from concurrent.futures import Future

    class Raising(LocalPool):
        def submit(self, spec, watch=None):
            fut: Future = Future()
            fut.set_exception(RuntimeError("boom"))
            return fut

    with pytest.raises(RuntimeError):
        conformance.check_a_crash_is_a_status_not_an_exception(lambda lab, slots: Raising(lab, slots), tmp_path)
