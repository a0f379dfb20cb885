"""Capture presets on samples of what libraries print (tests/fixtures/capture/), and on
scikit-learn's real output where it is installed here. xgboost, lightgbm, Keras 3, transformers,
Lightning and nanoGPT are also tested on their real output: tests/integration/test_capture_real_*.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.capture import PRESETS, Capture, metric_name
from assay.errors import ConfigError

SAMPLES = Path(__file__).parent.parent / "fixtures" / "capture"


def captured(text: str, spec: dict | None = None, declared: tuple[str, ...] = ()) -> list[tuple[int | None, dict]]:
    cap = Capture(spec, declared=declared)
    return [r for r in (cap.parse(line) for line in text.splitlines()) if r[1]]


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def test_keras2_fit_takes_each_epochs_last_line_with_the_epoch_as_step():
    rows = captured(sample("keras2_fit.txt"))
    assert rows[0] == (1, {"loss": 0.2563, "accuracy": 0.9268, "val_loss": 0.1362, "val_accuracy": 0.9597})
    assert rows[1] == (2, {"loss": 0.0712, "accuracy": 0.9781, "val_loss": 0.085, "val_accuracy": 0.974})
    # running averages of the ETA lines are not points; the evaluate line and the prose line are
    assert rows[2][1] == {"loss": 0.085, "accuracy": 0.974}
    assert rows[3][1] == {"test_accuracy": 0.974}
    assert len(rows) == 4


def test_keras3_fit_lines_with_ansi_colours():
    rows = captured(sample("keras3_fit.txt"))
    assert rows[0] == (1, {"accuracy": 0.8776, "loss": 0.4261, "val_accuracy": 0.9597, "val_loss": 0.1362})
    assert rows[1] == (2, {"accuracy": 0.9781, "loss": 0.0712, "val_accuracy": 0.974, "val_loss": 0.085})
    assert rows[2] == rows[1]  # verbose=2 prints the same figures without a bar
    assert len(rows) == 3


def test_keras3_redraw_of_an_epochs_last_bar_with_validation_adds_only_the_val_metrics():
    # Keras 3.15 verbose=1 (colours removed): the last bar before validation, then again after it
    text = ("Epoch 1/3\n5/8 ━━━━━━━━━━━━━━━━━━━━ 0s 123ms/step - accuracy: 0.4750 - loss: 0.7538\x08\x08\x08\n"
            "8/8 ━━━━━━━━━━━━━━━━━━━━ 0s 66ms/step - accuracy: 0.4667 - loss: 0.7572 \n"
            "8/8 ━━━━━━━━━━━━━━━━━━━━ 2s 135ms/step - accuracy: 0.4667 - loss: 0.7572 - val_accuracy: 0.4000 - val_loss: 0.7993\n")
    assert captured(text) == [(1, {"accuracy": 0.4667, "loss": 0.7572}), (1, {"val_accuracy": 0.4, "val_loss": 0.7993})]


def test_transformers_trainer_logs_and_not_its_arguments_or_a_params_dict():
    rows = captured(sample("transformers_trainer.txt"))
    names = set().union(*(m for _, m in rows))
    assert not names & {"adafactor", "num_train_epochs", "seed", "lr", "batch_size", "_n_gpu", "weight_decay",
                         "per_device_train_batch_size"}
    evals = [(step, m) for step, m in rows if "eval_f1" in m]
    # logging points: epoch 0.5, 1.0 (eval), 1.5, 2.0 (eval and the run's summary)
    assert [(s, m["eval_loss"], m["eval_f1"]) for s, m in evals] == [(2, 0.3107, 0.9012), (4, 0.2811, 0.9123)]
    train = [m for _, m in rows if "loss" in m]
    assert [m["loss"] for m in train] == [0.6867, 0.2716]
    assert train[0]["learning_rate"] == 4e-05 and train[0]["epoch"] == 0.5  # an epoch other than the step stays a metric
    assert rows[-1] == (4, {"train_runtime": 61.2113, "train_samples_per_second": 65.35,
                            "train_steps_per_second": 8.168, "train_loss": 0.4791, "epoch": 2.0})


# A real Trainer's output (transformers 5.25, logging_steps=2, 4 steps an epoch, eval each epoch).
TRAINER_EVERY_2_STEPS = """\
{'loss': '0.6931', 'grad_norm': '0.4052', 'learning_rate': '0.000875', 'epoch': '0.5'}
{'loss': '0.6926', 'grad_norm': '0.1313', 'learning_rate': '0.000625', 'epoch': '1'}
{'eval_loss': '0.6912', 'eval_runtime': '0.0033', 'eval_samples_per_second': '4860', 'eval_steps_per_second': '303.7', 'epoch': '1'}
{'loss': '0.6887', 'grad_norm': '0.3977', 'learning_rate': '0.000375', 'epoch': '1.5'}
{'loss': '0.6899', 'grad_norm': '0.2492', 'learning_rate': '0.000125', 'epoch': '2'}
{'eval_loss': '0.6904', 'eval_runtime': '0.0027', 'eval_samples_per_second': '5838', 'eval_steps_per_second': '364.8', 'epoch': '2'}
{'train_runtime': '0.0623', 'train_samples_per_second': '1027', 'train_steps_per_second': '128.4', 'train_loss': '0.6911', 'epoch': '2'}
"""


def test_transformers_logging_within_epochs_gives_each_log_its_own_step_in_order():
    rows = captured(TRAINER_EVERY_2_STEPS)
    assert [step for step, _ in rows] == [1, 2, 2, 3, 4, 4, 4]  # the eval shares the train log's point
    assert [(s, m["loss"], m["epoch"]) for s, m in rows if "loss" in m] == [
        (1, 0.6931, 0.5), (2, 0.6926, 1.0), (3, 0.6887, 1.5), (4, 0.6899, 2.0)]  # no step holds two losses
    assert [(s, m["eval_loss"]) for s, m in rows if "eval_loss" in m] == [(2, 0.6912), (4, 0.6904)]


def test_transformers_values_printed_as_strings_are_numbers():
    assert captured("{'loss': '0.6931', 'grad_norm': '1.23', 'learning_rate': '4e-05', 'epoch': '1.0'}") == [
        (1, {"loss": 0.6931, "grad_norm": 1.23, "learning_rate": 4e-05})]


def test_lightning_progress_bar_counts_full_bars_once_and_reads_the_test_table():
    rows = captured(sample("lightning_fit.txt"))
    # epoch 1's bar shows epoch 0's val_loss=0.320 until validation: not taken again as epoch 1's
    assert rows[:4] == [(0, {"train_loss": 0.301}), (0, {"val_loss": 0.32}),
                        (1, {"train_loss": 0.25}), (1, {"val_loss": 0.3})]
    table = {k: v for _, m in rows[4:] for k, v in m.items()}
    assert table == {"test_acc": 0.9700000286102295, "test_loss": 0.08500000089406967}
    assert not any("v_num" in m or "max_epochs" in m for _, m in rows)


def test_lightning_bar_with_a_message_from_the_other_stream_on_its_line_is_still_the_bar():
    # real output under a pipe: the last bar has no newline when Lightning logs that fit stopped
    text = ("Epoch 2: 100%|██████████| 4/4 [00:00<00:00, 144.74it/s, val_loss=0.0768, train_loss=0.808]\n"
            "Epoch 2: 100%|██████████| 4/4 [00:00<00:00, 142.90it/s, val_loss=0.0768, train_loss=0.177]"
            "`Trainer.fit` stopped: `max_epochs=3` reached.\n")
    assert captured(text) == [(2, {"val_loss": 0.0768, "train_loss": 0.808}), (2, {"train_loss": 0.177})]


def test_lightning_rich_bar_under_a_pipe_gives_its_last_epoch_with_the_wrapped_metrics_and_not_the_model_size():
    # verbatim from Lightning 2.6's default RichProgressBar and RichModelSummary writing to a pipe (80 columns)
    text = ("Trainable params: 5                                                             \n"
            "Non-trainable params: 0                                                         \n"
            "Total params: 5                                                                 \n"
            "Total estimated model params size (MB): 0.000                                   \n"
            "Modules in train mode: 1                                                        \n"
            "Modules in eval mode: 0                                                         \n"
            "Total FLOPs: 0                                                                  \n"
            "Epoch 1/1  ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4/4 0:00:00 • 0:00:00 462.38it/s val_loss: 0.310   \n"
            "                                                              train_loss: 0.808 \n"
            "`Trainer.fit` stopped: `max_epochs=2` reached.\n")
    assert captured(text) == [(1, {"val_loss": 0.31}), (1, {"train_loss": 0.808})]


def test_lightning_rich_bar_on_one_line_skips_v_num():
    line = "Epoch 3/9 ━━━━━━━━━━━━━━━━━━ 938/938 0:00:12 • 0:00:00 75.10it/s v_num: 0.000 val_loss: 0.300 train_loss: 0.250"
    assert captured(line) == [(3, {"val_loss": 0.3, "train_loss": 0.25})]


def test_lightning_rich_test_table():
    text = ("┏━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┓\n"
            "┃        Test metric        ┃       DataLoader 0        ┃\n"
            "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━┩\n"
            "│         test_acc          │    0.9700000286102295     │\n"
            "└───────────────────────────┴───────────────────────────┘\n"
            "done\n")
    assert captured(text) == [(0, {"test_acc": 0.9700000286102295})]


def test_nanogpt_steps_and_iters_and_not_its_config_echo():
    rows = captured(sample("nanogpt_train.txt"))
    assert rows[0] == (0, {"train_loss": 4.2874, "val_loss": 4.2823})
    assert rows[1] == (0, {"loss": 4.2654, "time_ms": 29873.12})  # mfu -100% means not measured yet
    assert rows[2] == (10, {"loss": 3.1234, "time_ms": 35.21, "mfu": 12.34})
    assert (250, {"train_loss": 1.9234, "val_loss": 2.0123}) in rows
    names = set().union(*(m for _, m in rows))
    assert names == {"train_loss", "val_loss", "loss", "time_ms", "mfu"}  # no max_iters, batch_size, vocab_size


def test_nanogpt_tokens_per_iteration_is_its_batch_not_a_metric():
    assert captured("tokens per iteration will be: 491,520\ntokens per iteration will be: 128\n") == []


def test_xgboost_rounds_are_steps_and_cv_std_is_kept():
    rows = captured(sample("xgboost_train.txt"))
    assert rows[0] == (0, {"validation_0_logloss": 0.61283, "validation_1_logloss": 0.62141})
    assert (10, {"validation_0_logloss": 0.25, "validation_1_logloss": 0.28}) in rows
    assert (10, {"valid_0_rmse": 0.31}) in rows
    assert rows[-1] == (0, {"train_auc": 0.95837, "train_auc_std": 0.00112, "test_auc": 0.94321, "test_auc_std": 0.00921})
    assert len(rows) == 6  # the warning lines hold none


def test_lightgbm_skips_its_info_lines_and_the_repeated_best_round():
    rows = captured(sample("lightgbm_train.txt"))
    assert rows == [(10, {"valid_0_binary_logloss": 0.41209, "valid_0_auc": 0.93}),
                    (20, {"valid_0_binary_logloss": 0.30121, "valid_0_auc": 0.951}),
                    (10, {"cv_agg_valid_binary_logloss": 0.412, "cv_agg_valid_binary_logloss_std": 0.0123})]


def test_sklearn_classification_report_from_the_real_library():
    metrics = pytest.importorskip("sklearn.metrics")
    y_true = [0, 1, 2, 2, 1, 0, 1, 2, 2, 0]
    y_pred = [0, 1, 2, 1, 1, 0, 2, 2, 2, 0]
    report = metrics.classification_report(y_true, y_pred, target_names=["setosa", "versicolor", "virginica"])
    got = {k: v for _, m in captured(report) for k, v in m.items()}
    expected = metrics.classification_report(y_true, y_pred, output_dict=True)
    assert got["accuracy"] == round(expected["accuracy"], 2)
    for kind in ("macro", "weighted"):
        row = expected[f"{kind} avg"]
        assert got[f"{kind}_avg_precision"] == round(row["precision"], 2)
        assert got[f"{kind}_avg_recall"] == round(row["recall"], 2)
        assert got[f"{kind}_avg_f1"] == round(row["f1-score"], 2)
    assert set(got) == {"accuracy", *(f"{k}_avg_{c}" for k in ("macro", "weighted") for c in ("precision", "recall", "f1"))}


def test_sklearn_multilabel_report_has_micro_and_samples_rows():
    metrics = pytest.importorskip("sklearn.metrics")
    y = [[1, 0], [0, 1], [1, 1], [0, 1]]
    p = [[1, 0], [0, 1], [1, 0], [0, 1]]
    got = {k for _, m in captured(metrics.classification_report(y, p, digits=4, zero_division=0)) for k in m}
    assert {"micro_avg_f1", "samples_avg_f1", "macro_avg_recall"} <= got and "accuracy" not in got


def test_prose_lines_and_never_constructor_or_config_arguments():
    rows = captured(sample("prose.txt"))
    assert [m for _, m in rows] == [
        {"test_accuracy": 0.969},
        {"mean_accuracy": 0.97, "mean_accuracy_pm": 0.02},
        {"validation_loss": 0.3012},
        {"accuracy": 0.98, "accuracy_std": 0.02},
    ]


@pytest.mark.parametrize("line", [
    "SVC(C=10, gamma=0.001)",
    "Classification report for classifier SVC(gamma=0.001):",
    "Namespace(lr=0.1, epochs=3)",
    "TrainingArguments(output_dir='out', learning_rate=5e-05, num_train_epochs=3)",
    "Config(lr=0.1, model=Model(depth=12, width=0.5))",
    "Pipeline(steps=[('scaler', StandardScaler()), ('svc', SVC(C=10))])",
    "{'lr': 0.1, 'batch_size': 32}",
    "{'learning_rate': 0.001, 'num_epochs': 3, 'eval_steps': 500}",
    "max_iters = 5000",
])
def test_arguments_are_not_metrics(line):
    assert Capture().parse(line) == (None, {})


def test_pairs_outside_a_repr_on_the_same_line_are_still_metrics():
    assert Capture().parse("model=SVC(C=10) acc=0.9 step=3") == (3, {"acc": 0.9})


def test_a_multiline_repr_ends_at_its_closing_paren_or_at_any_other_line():
    cap = Capture()
    assert [cap.parse(x) for x in ("Config(", "    lr=0.1,", "    depth=3,", ")")] == [(None, {})] * 4
    assert cap.parse("loss=0.5") == (0, {"loss": 0.5})
    cap = Capture()
    cap.parse("Weird(")
    assert cap.parse("val_bpb: 0.99") == (0, {"val_bpb": 0.99})  # not an argument line: the repr is over


def test_names_are_normalised_the_same_way_in_every_preset():
    assert metric_name("val loss") == "val_loss" == metric_name("Val-Loss")
    assert metric_name("Test accuracy") == "test_accuracy"
    assert Capture().parse("step 5: val loss 2.0")[1] == {"val_loss": 2.0}
    assert Capture().parse("Val loss: 2.0")[1] == {"val_loss": 2.0}
    assert Capture().parse("[5]\tval-loss:2.0")[1] == {"val_loss": 2.0}


def test_a_declared_name_takes_the_preset_name_it_normalises_to():
    assert Capture(declared=["validation_0-logloss"]).parse("[3]\tvalidation_0-logloss:0.25") == (
        3, {"validation_0-logloss": 0.25})
    assert Capture(declared=["Test accuracy"]).parse("Test accuracy = 0.969")[1] == {"Test accuracy": 0.969}
    # formats keep a script's own spelling: `Accuracy: 0.97` is not `accuracy`
    assert Capture(declared=["accuracy"]).parse("Accuracy: 0.97")[1] == {"Accuracy": 0.97}


def test_presets_can_be_chosen_or_turned_off():
    line = "Test accuracy = 0.969"
    assert Capture({"presets": []}).parse(line) == (None, {})
    assert Capture({"presets": ["prose"]}).parse(line)[1] == {"test_accuracy": 0.969}
    assert Capture({"presets": ["keras"]}).parse(line) == (None, {})
    # with presets off, a Lightning bar falls back to the equals format (v_num and all)
    bar = "Epoch 3: 100%|██████████| 938/938 [00:12<00:00, 75.1it/s, v_num=0, val_loss=0.3]"
    assert Capture({"presets": []}).parse(bar)[1] == {"v_num": 0.0, "val_loss": 0.3}
    assert Capture().parse(bar) == (3, {"val_loss": 0.3})


def test_unknown_preset_or_capture_key_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown capture preset 'kears'") as exc:
        Capture({"presets": ["kears"]})
    assert all(name in exc.value.message for name in PRESETS) and "Did you mean 'keras'" in exc.value.message
    with pytest.raises(ConfigError, match="Did you mean 'presets'"):
        Capture({"preset": ["keras"]})
    with pytest.raises(ConfigError, match="must be a list"):
        Capture({"presets": {"keras": 1}})


def test_user_patterns_still_apply_on_lines_a_preset_reads():
    cap = Capture({"patterns": [r"mfu (?P<mfu_pct>[\d.]+)%"]})
    assert cap.parse("iter 10: loss 3.1234, time 35.21ms, mfu 12.34%") == (
        10, {"loss": 3.1234, "time_ms": 35.21, "mfu": 12.34, "mfu_pct": 12.34})
