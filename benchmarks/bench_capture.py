"""Metric capture throughput: output lines parsed per second on a mixed, realistic training log,
with the presets on (the default) and off (the generic formats alone).

The log interleaves the verbatim library samples of tests/fixtures/capture/ (Keras, Transformers,
Lightning, nanoGPT, XGBoost, LightGBM, prose) with a scikit-learn classification report, tqdm
bars, warnings, a printed TrainingArguments repr and plain prose, then repeats to N lines. Target:
>= 100,000 lines/s with the presets on. In-process and single-threaded, as the runner's reader is;
timed in CPU seconds of this process (a shared machine's other load does not count against it).

    python benchmarks/bench_capture.py [--lines 200000] [--reps 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, machine, median, table  # noqa: E402

EXTRA = """\
              precision    recall  f1-score   support

           0       1.00      0.99      0.99        88
           1       0.99      0.97      0.98        91
    accuracy                           0.97       899
   macro avg       0.97      0.97      0.97       899
weighted avg       0.97      0.97      0.97       899
 42%|████▏     | 420/1000 [00:21<00:29, 19.87it/s]
 43%|████▎     | 430/1000 [00:21<00:28, 19.91it/s, loss=0.412]
/usr/lib/python3/site-packages/torch/utils/data/dataloader.py:558: UserWarning: This DataLoader will create 4 worker processes in total.
  warnings.warn(_create_warning_msg(
Loading checkpoint shards: 100%|██████████| 2/2 [00:01<00:00,  1.32it/s]
2026-01-01 12:00:00,123 - INFO - Saving model checkpoint to out/checkpoint-500
step=500 loss=0.3121 lr=3e-4
val_bpb:          0.997900
Traceback-free note: the learning rate schedule is cosine with warmup
"""


def mixed_log(n: int) -> list[str]:
    lines: list[str] = []
    for file in sorted((ROOT / "tests" / "fixtures" / "capture").glob("*.txt")):
        lines += file.read_text(encoding="utf-8").splitlines()
    lines += EXTRA.splitlines()
    return (lines * (n // len(lines) + 1))[:n]


def rate(spec: dict | None, lines: list[str], reps: int) -> tuple[float, int]:
    """Median lines/s of a fresh Capture over `lines`, and how many lines held metrics."""
    from assay.capture import Capture

    times, hits = [], 0
    for _ in range(reps):
        cap = Capture(spec)
        parse = cap.parse
        t = time.process_time()
        hits = sum(1 for line in lines if parse(line)[1])
        times.append(time.process_time() - t)
    return len(lines) / median(times), hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    lines = mixed_log(args.lines)
    t = time.process_time()
    for _ in lines:
        pass
    floor = len(lines) / max(time.process_time() - t, 1e-9)
    rows = []
    for label, spec in [("presets on (default)", None), ("presets off (`presets: []`)", {"presets": []})]:
        per_s, hits = rate(spec, lines, args.reps)
        rows.append([label, f"{per_s:,.0f}", f"{1e6 / per_s:.2f} us", f"{hits:,}", "yes" if per_s >= 100_000 else "NO"])
    table(f"Metric capture on a mixed training log ({len(lines):,} lines, median of {args.reps})",
          ["capture", "lines/s", "per line", "lines with metrics", ">= 100k lines/s"], rows,
          [f"an empty Python loop over the same lines: {floor:,.0f} lines/s", machine()])


if __name__ == "__main__":
    main()
