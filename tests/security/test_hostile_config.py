"""Malformed or hostile configuration gets a one-line error naming the file (and line), never a traceback."""

from __future__ import annotations

import sys
import textwrap

import pytest

SCRIPT = "import assay\np = assay.params()\nassay.log({'val_bpb': 0.5}, step=0)\n"


def _one_line_error(out, *needles: str) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("Error: "), out.stderr
    for needle in needles:
        assert needle in first, first
    return first


@pytest.mark.parametrize(("config", "needle"), [
    ("seed: 0\nloop: &x [*x]\n", "config.yaml:2: recursive alias"),
    ("seed: 0\nloop: &x {inner: *x}\n", "config.yaml:2: recursive alias"),
    ("seed: 0\ndeep: " + "{a: " * 200 + "1" + "}" * 200 + "\n", "nested deeper than 64 levels"),
    ("seed: 0\ndeep: " + "[" * 5000 + "]" * 5000 + "\n", "config.yaml"),
    ("seed: 0\nlr: 0.1\nlr: 0.2\n", "config.yaml:3: duplicate key 'lr' (first at line 2)"),
    ("seed: 0\non: 1\n", "config.yaml:2: the key 'on' reads as True"),
    ("a: &a [1,2,3,4,5,6,7,8,9,0]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e]\n",
     "expand to more than 100,000 values"),
])
def test_hostile_config_yaml_is_refused_with_file_and_line(lab, make_experiment, cli, config, needle):
    make_experiment(SCRIPT)
    (lab.experiment_dir("exp") / "config.yaml").write_text(config)
    _one_line_error(cli("run", "exp", "x"), needle)


def test_yaml_merge_keys_may_be_overridden_without_a_duplicate_key_error(lab, make_experiment, cli):
    make_experiment(SCRIPT)
    (lab.experiment_dir("exp") / "config.yaml").write_text(
        "seed: 0\nbase: &b {lr: 0.1, wd: 0.0}\nopt:\n  <<: *b\n  lr: 0.3\n")
    out = cli("run", "exp", "merged")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("override", "needle"), [
    ("+" + ".".join(["a"] * 5000) + "=1", "nested deeper than 64 levels"),
    ("+deep=" + "[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
    ("+deep=" + "[" * 100 + "]" * 100, "nested deeper than 64 levels"),
])
def test_overrides_nested_too_deep_are_refused(lab, make_experiment, cli, override, needle):
    make_experiment(SCRIPT)
    _one_line_error(cli("run", "exp", "x", override), needle)


@pytest.mark.parametrize(("field", "needle"), [
    ("metric: 5", "`metric` in"),
    ("metric: {name: 5, goal: max}", "`metric.name` in"),
    ("entry: yes", "`entry` in"),
    ("secondary_metrics: [1]", "`secondary_metrics[0]` in"),
    ("success: 5", "`success` in"),
    ("capture: [1, 2]", "`capture` in"),
    ("entry: \"python 'train.py\"", "No closing quotation"),
    ("metric: val_bpb\nmetric: loss", "duplicate key 'metric'"),
])
def test_experiment_yaml_fields_of_the_wrong_type_are_refused_with_file_and_line(lab, make_experiment, cli, field, needle):
    make_experiment(SCRIPT)
    key = field.split(":")[0]
    file = lab.experiment_dir("exp") / "experiment.yaml"
    kept = [ln for ln in file.read_text().splitlines() if not ln.startswith(f"{key}:") and not (
        key == "metric" and ln.startswith("  "))]
    file.write_text("\n".join([*kept, field]) + "\n")
    line = len(kept) + 1
    first = _one_line_error(cli("run", "exp", "x"), needle)
    assert f"experiment.yaml:{line}" in first or f"experiment.yaml:{line + 1}" in first


def test_an_unclosed_quote_in_entry_option_is_one_line(lab, make_experiment, cli):
    make_experiment(SCRIPT)
    _one_line_error(cli("run", "exp", "x", "--entry", "python 'train.py"), "No closing quotation")


@pytest.mark.parametrize("folder", ["/tmp/elsewhere", "../elsewhere", "a/../../elsewhere", "5"])
def test_experiments_dir_outside_the_lab_is_refused(lab, cli, folder):
    value = folder if folder == "5" else f'"{folder}"'
    (lab.root / "assay.toml").write_text(f"[lab]\nexperiments_dir = {value}\n")
    _one_line_error(cli("runs"), "experiments_dir", "assay.toml")
    _one_line_error(cli("new", "x", "--hypothesis", "h", "--metric", "m", "--goal", "max"), "experiments_dir")


def test_report_and_plot_without_matplotlib_name_the_extra_to_install(lab, make_experiment, cli, tmp_path):
    make_experiment(SCRIPT)
    assert cli("run", "exp", "x").returncode == 0
    # matplotlib cannot be uninstalled for one test: a package of that name that fails to import
    # shadows it on PYTHONPATH, which is what `import matplotlib` meets when it is absent.
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {"PYTHONPATH": f"{shadow.parent}:{':'.join(p for p in sys.path if p)}"}
    for args in (("report", "exp"), ("plot", "exp", "--compare")):
        out = cli(*args, env=env)
        _one_line_error(out, "matplotlib")
        assert "pip install 'assay[plots]'" in out.stderr


def test_a_toml_lab_section_that_is_not_a_table_is_one_line(lab, cli):
    (lab.root / "assay.toml").write_text(textwrap.dedent("""\
        lab = 5
        """))
    _one_line_error(cli("runs"), "[lab]", "assay.toml")
