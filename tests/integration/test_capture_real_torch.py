"""Capture presets on what the real torch libraries print under `assay run`: a Hugging Face
Trainer, PyTorch Lightning (its default rich bar and its tqdm bar) and karpathy/nanoGPT's own
train.py (tests/fixtures/nanogpt, unchanged). Each script trains a tiny model on CPU on synthetic
data as an unmodified assay run, and the metrics assay recorded are checked against what the
library itself recorded (Trainer.state.log_history, Lightning's callback_metrics, nanoGPT's
checkpoint), which the script writes to record.json in its working directory.

Each test is skipped only when its library is not installed (`pip install -e '.[test]'` installs
them, after the CPU build of torch: see .ci/run)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from assay.store import records

NANOGPT = Path(__file__).parent.parent / "fixtures" / "nanogpt"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}


def assay_run(lab, cli, name: str, *overrides: str) -> tuple[dict, dict[str, list[tuple[int, float]]], object]:
    """`assay run exp NAME`: its run.json, the metric series it captured from output, and the script's record.json."""
    out = cli("run", "exp", name, *overrides, timeout=240, env=OFFLINE)
    exp = lab.experiment_dir("exp")
    (run_dir,) = [p for p in (exp / "runs").iterdir() if name in p.name]
    log = "\n".join(p.read_text(errors="replace")[-3000:] for p in (run_dir / "logs").iterdir())
    assert out.returncode == 0, out.stdout + out.stderr + log
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok", record
    series = {k: [(step, value) for step, value, _ in points] for k, points in records.metric_series(run_dir).items()}
    return record, series, json.loads((exp / "record.json").read_text())


def sig4(value: float) -> float:
    """The Trainer prints floats as f"{v:.4g}"."""
    return float(f"{value:.4g}")


TRAINER = """
import json
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 50, (n, 8), generator=g)
        self.labels = (self.ids[:, 0] > 25).long()
    def __len__(self):
        return len(self.ids)
    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}

torch.manual_seed(0)
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                    max_position_embeddings=16, num_labels=2)
args = TrainingArguments(output_dir="out", num_train_epochs=2, per_device_train_batch_size=8, eval_strategy="epoch",
                         logging_steps=2, save_strategy="no", report_to="none", use_cpu=True, learning_rate=1e-3, seed=0)
trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Tokens(32, 0),
                  eval_dataset=Tokens(16, 1))
trainer.train()
with open("record.json", "w") as f:
    json.dump(trainer.state.log_history, f)
"""


def test_transformers_trainer_logs_every_two_steps_are_captured_at_their_logging_point(lab, make_experiment, cli):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # the Trainer needs it
    make_experiment(TRAINER, metric="eval_loss", goal="min")
    record, series, history = assay_run(lab, cli, "hf")
    # 4 steps an epoch, a log every 2 steps: logging points 1..4 are global steps 2, 4, 6, 8
    expected: dict[str, list[tuple[int, float]]] = {}
    for log in history:
        for key, value in log.items():
            if key not in ("step", "total_flos") and not (key == "epoch" and value == log["step"] // 2):
                expected.setdefault(key, []).append((log["step"] // 2, sig4(value)))
    printed = {k: v for k, v in series.items() if not k.startswith("sys/")}
    assert set(printed) == set(expected) >= {"loss", "eval_loss", "train_loss", "epoch", "learning_rate", "grad_norm"}
    for key in ("loss", "eval_loss", "train_loss", "epoch", "learning_rate", "grad_norm"):
        assert printed[key] == expected[key], key
    assert [step for step, _ in printed["loss"]] == [1, 2, 3, 4]  # one value a step
    assert sorted(set(printed["epoch"])) == [(1, 0.5), (2, 1.0), (3, 1.5), (4, 2.0)]  # eval logs repeat their point's
    assert record["metrics"]["eval_loss"]["last"] == sig4(history[-2]["eval_loss"])


LIGHTNING = """
import json
import sys
import torch
import lightning as L

class Regression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.record = []
    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss
    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y), prog_bar=True)
    def on_train_epoch_end(self):
        self.record.append({k: float(v) for k, v in self.trainer.callback_metrics.items()})
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

L.seed_everything(0)
X = torch.randn(64, 4)
Y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0])
train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:32], Y[:32]), batch_size=16)
bar = [L.pytorch.callbacks.TQDMProgressBar()] if sys.argv[1:] == ["tqdm"] else []  # else rich's, the default
trainer = L.Trainer(max_epochs=3, enable_progress_bar=True, logger=False, enable_checkpointing=False, accelerator="cpu",
                    callbacks=bar)
model = Regression()
trainer.fit(model, train, val)
with open("record.json", "w") as f:
    json.dump(model.record, f)
"""


@pytest.mark.parametrize("bar", ["rich", "tqdm"])
def test_lightning_progress_bar_gives_each_epochs_val_loss_once_with_lightnings_value(lab, make_experiment, cli, bar):
    pytest.importorskip("torch")
    pytest.importorskip("lightning")
    make_experiment(LIGHTNING, metric="val_loss", goal="min", entry=f"train.py {bar}")
    record, series, epochs = assay_run(lab, cli, bar)
    printed = {k: v for k, v in series.items() if not k.startswith("sys/")}
    assert set(printed) == {"val_loss", "train_loss"}, printed  # no v_num, no model summary sizes
    # Under a pipe, rich prints only the last epoch's bar, when training ends, with values as f"{v:.3f}";
    # tqdm draws every epoch's, with 3 significant digits (`val_loss=0.0768`).
    shown, shown_as = ([2], "{:.3f}") if bar == "rich" else ([0, 1, 2], "{:.3g}")
    for key in ("val_loss", "train_loss"):
        assert printed[key] == [(e, float(shown_as.format(epochs[e][key]))) for e in shown], key
    assert record["metrics"]["val_loss"]["last"] == float(shown_as.format(epochs[-1]["val_loss"]))


def nanogpt_data(folder: Path) -> None:
    """data/tiny/ as nanoGPT's prepare.py scripts leave it: uint16 token files and meta.pkl."""
    import numpy as np

    data = folder / "data" / "tiny"
    data.mkdir(parents=True)
    tokens = np.random.default_rng(0).integers(0, 16, size=5000).astype(np.uint16)
    tokens[:4000].tofile(data / "train.bin")
    tokens[4000:].tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": 16}, f)


NANOGPT_PARAMS = {
    "dataset": "tiny", "device": "cpu", "compile": False, "dtype": "float32", "max_iters": 20, "eval_interval": 10,
    "eval_iters": 5, "log_interval": 1, "n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32, "batch_size": 4,
    "gradient_accumulation_steps": 1, "warmup_iters": 5, "lr_decay_iters": 20, "learning_rate": 0.01, "min_lr": 0.001,
}


def test_nanogpt_train_py_unchanged_runs_with_equals_params_and_ends_ok_on_its_val_loss(lab, make_experiment, cli):
    torch = pytest.importorskip("torch")
    pytest.importorskip("numpy")
    make_experiment((NANOGPT / "train.py").read_text(), metric="val_loss", goal="min", config=NANOGPT_PARAMS,
                    params="equals")
    exp = lab.experiment_dir("exp")
    for name in ("model.py", "configurator.py"):
        shutil.copy(NANOGPT / name, exp / name)
    assert (exp / "train.py").read_bytes() == (NANOGPT / "train.py").read_bytes()
    nanogpt_data(exp)
    out = cli("run", "exp", "gpt", timeout=240, env=OFFLINE)
    (run_dir,) = list((exp / "runs").iterdir())
    text = "\n".join(p.read_text(errors="replace") for p in (run_dir / "logs").iterdir())
    assert out.returncode == 0, out.stdout + out.stderr + text[-3000:]
    assert "Overriding: max_iters = 20" in text and "Overriding: compile = False" in text  # the params reached it
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "ok", record
    series = {k: v for k, v in records.metric_series(run_dir).items() if not k.startswith("sys/")}
    assert set(series) == {"train_loss", "val_loss", "loss", "time_ms", "mfu"}  # not `tokens per iteration will be`
    evals = [(step, value) for step, value, _ in series["val_loss"]]
    assert [step for step, _ in evals] == [0, 10, 20]
    assert [step for step, _, _ in series["train_loss"]] == [0, 10, 20]
    assert [step for step, _, _ in series["loss"]] == list(range(21))
    assert [step for step, _, _ in series["mfu"]] == list(range(5, 21))  # -100.00% until nanoGPT has measured it
    # nanoGPT's own record: the checkpoint it saved at the last eval (always_save_checkpoint)
    checkpoint = torch.load(exp / "out" / "ckpt.pt", map_location="cpu", weights_only=False)
    assert checkpoint["iter_num"] == 20
    assert evals[-1][1] == round(float(checkpoint["best_val_loss"]), 4)
    assert record["metrics"]["val_loss"]["last"] == evals[-1][1]
    assert record["metrics"]["val_loss"]["best"] == min(value for _, value in evals)
