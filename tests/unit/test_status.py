import math
import signal

from assay.runner.status import classify


def test_ok_requires_the_primary_metric():
    assert classify(0, None, "", "val_bpb", 0.99)[0] == "ok"
    status, reason = classify(0, None, "", "val_bpb", None)
    assert status == "failed" and "val_bpb" in reason


def test_timeout_and_interrupt_come_from_what_assay_did():
    assert classify(-15, "timeout", "", "m", None)[0] == "timeout"
    assert classify(-2, "interrupt", "", "m", None)[0] == "interrupted"


def test_oom_from_the_log_or_an_outside_sigkill_the_kernel_counted_as_an_oom_kill():
    assert classify(1, None, "torch.OutOfMemoryError: CUDA out of memory. Tried", "m", None)[0] == "oom"
    assert classify(1, None, "Traceback...\nMemoryError", "m", None)[0] == "oom"
    assert classify(-signal.SIGKILL, None, "", "m", None, oom_kills=1)[0] == "oom"


def test_a_sigkill_without_oom_evidence_is_killed_not_oom():
    for evidence in (None, 0):  # unreadable cgroup memory events, or no OOM kill counted during the run
        status, reason = classify(-signal.SIGKILL, None, "step 3\n", "m", None, oom_kills=evidence)
        assert status == "killed"
        assert reason == "killed by signal 9 (SIGKILL): the kernel's OOM killer or a manual kill"
    # What the script said about itself still wins: a MemoryError in the log is an OOM.
    assert classify(-signal.SIGKILL, None, "MemoryError", "m", None)[0] == "oom"


def test_nan_metric():
    assert classify(0, None, "", "m", math.nan)[0] == "nan"
    assert classify(0, None, "", "m", math.inf)[0] == "nan"


def test_crash_reason_quotes_the_last_line():
    status, reason = classify(1, None, "Traceback\nValueError: bad shape", "m", None)
    assert status == "failed" and "ValueError: bad shape" in reason and "exit code 1" in reason


def test_missing_primary_metric_names_a_near_match_and_the_capture_line():
    import yaml

    from assay.capture import Capture

    tail = "SVC(C=10, gamma=0.001)\nAccuracy: 0.97\n"
    status, reason = classify(0, None, tail, "accuracy", None, seen={"Accuracy": 0.97, "loss": 0.3})
    assert status == "failed" and "\n" not in reason
    assert "saw Accuracy=0.97 \u2014 did you mean Accuracy?" in reason and "loss" not in reason
    line = reason.split("`")[1]
    assert line == "capture: {patterns: ['Accuracy: (?P<accuracy>[\\d.]+)']}"
    assert Capture(yaml.safe_load(line)["capture"]).parse("Accuracy: 0.97")[1]["accuracy"] == 0.97


def test_missing_primary_metric_finds_it_in_prose_when_nothing_was_captured():
    _, reason = classify(0, None, "Final ACCURACY on the test set is 97.1%\n", "accuracy", None, seen={})
    assert "no metric was captured" in reason
    assert "['ACCURACY on the test set is (?P<accuracy>[\\d.]+)']" in reason


def test_missing_primary_metric_lists_what_was_captured_when_nothing_is_near():
    _, reason = classify(0, None, "done\n", "val_bpb", None, seen={f"m{i}": 1.0 for i in range(8)})
    assert "saw m0, m1, m2, m3, m4, m5 (+2 more)" in reason and "Print `val_bpb: <value>`" in reason


def test_near_matches_by_case_containment_and_edit_distance():
    from assay.runner.status import near_names

    assert near_names("val_loss", ["Val Loss", "val_lss", "test_val_loss", "lr"]) == ["Val Loss", "test_val_loss", "val_lss"]
    assert near_names("f1", ["loss", "lr"]) == []
