"""The `--json` contract: every listed command's output parses as strict JSON and has the keys
docs/ecosystem.md promises (the docs block is parsed, so docs and output cannot drift apart).
Default outputs stay terse: one line per run, bounded listings."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from assay.store import records
from tests.conftest import ASSAY

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ecosystem.md"

SCRIPT = """
import time, assay
p = assay.params()
for step in range(2):
    print(f"step={step} val_f1={p['lr'] * (step + 1)}", flush=True)
for i in range(p["noise"]):
    print(f"progress line {i}")
time.sleep(p["sleep"])
"""


# ------------------------------------------------------------------ the schema notation of the docs


def parse_schema(text: str) -> object:
    """`{a, b: [{c}], m: {*: {d}}}` -> nested dicts/lists; a bare key maps to None (any value)."""
    tokens = re.findall(r"[{}\[\]:,*]|[A-Za-z_][\w]*", text)
    pos = 0

    def value() -> object:
        nonlocal pos
        tok = tokens[pos]
        if tok == "{":
            pos += 1
            out: dict[str, object] = {}
            while tokens[pos] != "}":
                key = tokens[pos]
                pos += 1
                if tokens[pos] == ":":
                    pos += 1
                    out[key] = value()
                else:
                    out[key] = None
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return out
        if tok == "[":
            pos += 1
            item = value()
            assert tokens[pos] == "]", text
            pos += 1
            return [item]
        raise AssertionError(f"unexpected {tok!r} in {text}")

    result = value()
    assert pos == len(tokens), f"trailing tokens in {text}"
    return result


def check(data: object, schema: object, where: str = "$") -> None:
    if schema is None:
        return
    if isinstance(schema, list):
        assert isinstance(data, list), f"{where}: expected a list, got {type(data).__name__}"
        for i, item in enumerate(data):
            check(item, schema[0], f"{where}[{i}]")
        return
    assert isinstance(schema, dict)
    assert isinstance(data, dict), f"{where}: expected an object, got {type(data).__name__}"
    if set(schema) == {"*"}:
        for k, v in data.items():
            check(v, schema["*"], f"{where}.{k}")
        return
    missing = set(schema) - set(data)
    assert not missing, f"{where}: missing documented keys {sorted(missing)}"
    for k, sub in schema.items():
        check(data[k], sub, f"{where}.{k}")


def _block() -> str:
    return DOCS.read_text().split("<!-- json-contract:begin -->")[1].split("<!-- json-contract:end -->")[0]


def documented() -> dict[str, object]:
    """Command (with the options that change its output, e.g. `run --detach`) -> schema."""
    out = {}
    for m in re.finditer(r"^- `assay ([a-z][a-z -]*?) --json`: `(.+)`$", _block(), re.M):
        out[m.group(1)] = parse_schema(m.group(2))
    return out


def error_schema() -> object:
    (m,) = re.finditer(r"^- `assay COMMAND --json` when it fails: `(.+)`$", _block(), re.M)
    return parse_schema(m.group(1))


def without_json() -> set[str]:
    """The commands the docs declare have no --json (servers, the demo)."""
    (line,) = [ln for ln in _block().splitlines() if ln.startswith("- no `--json`:")]
    return set(re.findall(r"`assay ([a-z -]+)`", line))


def test_schema_notation_parser_rejects_what_it_should():
    schema = parse_schema("{a, b: [{c}], m: {*: {d}}}")
    check({"a": 1, "b": [{"c": 2, "extra": 0}], "m": {"x": {"d": 1}, "y": {"d": 2}}}, schema)
    for bad in ({"b": [], "m": {}}, {"a": 1, "b": [{}], "m": {}}, {"a": 1, "b": {}, "m": {}}, {"a": 1, "b": [], "m": {"x": {}}}):
        with pytest.raises(AssertionError):
            check(bad, schema)


# ------------------------------------------------------------------ the real commands


def _json(cli, *args: str) -> object:
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c} in {args}"))


def test_listing_commands_json_has_the_documented_keys(lab, make_experiment, cli):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "noise": 0, "sleep": 0}, metric="val_f1", goal="max")
    schemas = documented()
    assert {"run", "runs", "show", "compare", "journal", "status", "reindex", "export mlflow"} <= set(schemas)
    outputs = {
        "run": _json(cli, "run", "exp", "base", "--json"),
    }
    rid = outputs["run"][0]["id"]
    assert _json(cli, "run", "exp", "wider", "lr=0.7", "--json")[0]["status"] == "ok"
    assert cli("note", "exp", "[HUNCH] lr matters", "--run", rid).returncode == 0

    # A live run for `status`, then its launcher killed: the run is lost (the real way it happens).
    proc = subprocess.Popen([*ASSAY, "run", "exp", "slow", "sleep=60"], cwd=lab.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while not (status := _json(cli, "status", "--json"))["running"] or not status["running"][0].get("metrics"):
        assert time.monotonic() < deadline and proc.poll() is None, "the slow run never showed as running"
        time.sleep(0.2)  # waiting for another process; bounded by the deadline
    outputs["status"] = status
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 30
    while not (lost := _json(cli, "status", "--json"))["lost"]:
        assert time.monotonic() < deadline, "the killed run never showed as lost"
        time.sleep(0.2)

    outputs.update({
        "runs": _json(cli, "runs", "exp", "--json"),
        "show": _json(cli, "show", rid, "--json"),
        "compare": _json(cli, "compare", "exp", "--by", "lr", "--json"),
        "journal": _json(cli, "journal", "exp", "--json"),
        "reindex": _json(cli, "reindex", "--json"),
    })
    check(lost, schemas["status"], "status(lost)")
    for command, data in outputs.items():
        check(data, schemas[command], command)
    # Not vacuous: the lists the schemas describe are filled.
    assert outputs["runs"]["total"] == 3 and len(outputs["compare"]["rows"]) == 2
    assert outputs["runs"]["runs"][0]["metrics"] and outputs["journal"][0]["run"] == rid
    assert outputs["compare"]["rows"][0]["lr"] == 0.5  # each --by param is a key of its row


def test_documented_commands_all_accept_json():
    import typer

    from assay.cli.main import app

    root = typer.main.get_command(app)
    for command in documented():
        cmd = root
        words = command.split()
        for word in (w for w in words if not w.startswith("--")):
            assert word in getattr(cmd, "commands", {}), f"no command 'assay {command}'"
            cmd = cmd.commands[word]
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        for option in ("--json", *(w for w in words if w.startswith("--"))):
            assert option in options, f"assay {command} lacks {option}"


def test_every_command_is_documented_with_its_json_keys_or_declared_without_json():
    import typer

    from assay.cli.main import app

    def leaves(cmd, prefix: str) -> list[str]:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            return [prefix]
        return [leaf for name, sub in subs.items() for leaf in leaves(sub, f"{prefix} {name}".strip())]

    commands = set(leaves(typer.main.get_command(app), ""))
    listed = set(documented()) | without_json()
    assert commands - listed == set(), "commands whose --json keys docs/ecosystem.md does not list"
    assert without_json() <= commands and len(commands) > 30


def test_default_output_is_terse_one_line_per_run_and_bounded_listings(lab, make_experiment, cli):
    make_experiment(SCRIPT, config={"seed": 0, "lr": 0.5, "noise": 5000, "sleep": 0}, metric="val_f1", goal="max")
    out = cli("run", "exp", "chatty")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 1 and "val_f1=1" in out.stdout  # 5000 lines went to the log only
    run_dir = Path(json.loads(cli("runs", "--json").stdout)["runs"][0]["path"])
    assert len((run_dir / records.LOG_FILE).read_text().splitlines()) >= 5000

    # 24 more runs as copies of the folder (files are the truth; reindex rebuilds the index from them).
    for i in range(24):
        copy = run_dir.parent / f"{run_dir.name}-copy{i:02d}"
        shutil.copytree(run_dir, copy)
        rec = records.read_record(copy)
        rec["id"] = records.run_id(copy)
        records.write_record(copy, records.RunRecord.from_dict(rec))
    assert _json(cli, "reindex", "--json")["runs"] == 25
    listing = cli("runs").stdout.splitlines()
    assert len(listing) <= 22 and listing[-1] == "(5 more; --limit 0 shows all)"


# ------------------------------------------------------------------ every command, success and error

CONTRACT_SCRIPT = """
import json, os, random, sys, time
p = json.loads(os.environ["ASSAY_PARAMS"])
LR = 1.0
CRASH = 0
if CRASH:
    sys.exit("a crash the loop must record")
random.seed(p["seed"])
for step in range(2):
    print(f"step={step} val_f1={p['lr'] * LR * (step + 1) + random.random() * 0.01}", flush=True)
time.sleep(p["sleep"])
"""
EXIT_CODES = {1, 2, 124, 130}  # README, "Exit codes"


def _documented_json(cli, schemas: dict, command: str, *args: str, code: int = 0) -> object:
    """Run `assay ARGS --json`, check its exit code and its output against the docs' keys for `command`."""
    out = cli(*args, "--json")
    assert out.returncode == code, (args, out.stdout[-2000:], out.stderr[-2000:])
    data = json.loads(out.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c} in {args}"))
    check(data, schemas[command], command)
    return data


def _json_error(cli, *args: str, env: dict | None = None) -> dict:
    """`assay ARGS --json` that fails: one JSON object on stdout with the documented keys, its `exit`
    the process's exit code, nothing on stderr."""
    out = cli(*args, "--json", env=env)
    assert out.returncode in EXIT_CODES and out.stdout.startswith("{"), (args, out.returncode, out.stdout, out.stderr)
    data = json.loads(out.stdout)
    check(data, error_schema(), f"error of {args}")
    assert data["exit"] == out.returncode and data["error"] and "Traceback" not in out.stdout + out.stderr, (args, out)
    assert out.stderr == "", (args, out.stderr)
    return data


def test_every_command_json_has_the_documented_keys_and_its_errors_are_json(lab, make_experiment, cli, tmp_path):
    from tests.conftest import git
    from tests.integration.conftest import commit_baseline, edit

    exp = make_experiment(CONTRACT_SCRIPT, config={"seed": 0, "lr": 0.5, "split": "val", "sleep": 0}, metric="val_f1",
                          goal="max", success="val_f1 >= 0.5", confirm={"params": {"split": "test"}, "seeds": 2})
    commit_baseline(lab.root)
    s = documented()
    j = lambda command, *args, code=0: _documented_json(cli, s, command, *args, code=code)  # noqa: E731

    # Runs, in the foreground and in the background.
    base = j("run", "run", "exp", "base")[0]["id"]
    j("run", "run", "exp", "wider", "lr=0.7", "--repeat", "2")
    bg = j("run --detach", "run", "exp", "bg", "sleep=60", "--detach")
    assert bg["status"] == "running" and Path(bg["path"]).is_dir()
    deadline = time.monotonic() + 30
    while not (running := j("status", "status")["running"]) or running[0]["last_step"] is None:
        assert time.monotonic() < deadline, "the background run never showed progress"
        time.sleep(0.1)  # waiting for another process; bounded by the deadline
    assert running[0]["id"] == bg["id"] and running[0]["primary_metric"] == "val_f1" and running[0]["elapsed"] >= 0
    waited = j("wait", "wait", bg["id"], "--timeout", "0.3", code=124)
    assert waited["timed_out"] is True and waited["runs"][0]["status"] == "running"
    os.kill(bg["pid"], signal.SIGKILL)  # its owner dies: the run is lost, and waiting says so
    assert j("wait", "wait", "last", code=1)["runs"][0]["status"] == "lost"
    assert j("wait", "wait", base)["exit"] == 0

    # Reading, notes, evidence.
    for command, args in [("runs", ["exp"]), ("show", [base]), ("compare", ["exp", "--by", "lr"]),
                          ("note", ["exp", "[HUNCH] lr matters", "--run", base]), ("journal", ["exp"]),
                          ("verdict", ["exp"]), ("plot", [base]), ("report", ["exp"]), ("agent-guide", []),
                          ("reindex", [])]:
        j(command, command, *args)
    j("ignore", "ignore", "wider-seed1", "--why", "a flaky node")
    assert j("check", "check", "exp", code=1)["findings"]  # a finding: exit 1, JSON all the same
    (tmp_path / "train.csv").write_text("id,x,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(60)))
    (tmp_path / "val.csv").write_text("id,x,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(50, 90)))
    assert j("check-data", "check-data", str(tmp_path / "train.csv"), str(tmp_path / "val.csv"), "--key", "id", code=1)["findings"]
    assert j("rerun", "rerun", base)["original"] == base
    assert j("sweep", "sweep", "exp", "lr=0.1,0.2", "-j", "1")["counts"] == {"ok": 2}

    # The loop, every subcommand.
    start = j("loop start", "loop", "start", "exp", "--tag", "t", "--edit", "train.py", "--edit", "config.yaml",
              "--repeats", "2", "--decision", "greedy")
    assert start["decision"] == "keep"
    edit(exp, LR=2.0)
    assert j("try", "try", "double lr")["decision"] == "keep"
    for command, args in [("loop status", ["t"]), ("loop log", ["t"]), ("loop prompt", ["t"]), ("loop plot", ["t"]),
                          ("loop confirm", ["t"])]:
        j(command, *command.split(), *args)
    assert j("loop run", "loop", "run", "t", "--propose", "params", "--param", "lr", "--max-iterations", "1")["stopped"]
    edit(exp, CRASH=1)
    assert j("try", "try", "crash on purpose")["decision"] == "crash"
    j("loop drop", "loop", "drop", "t")
    j("loop resume", "loop", "resume", "t")

    # Making labs and experiments last: they leave files the loop's work tree should not see.
    assert j("new", "new", "exp2", "-H", "h", "--metric", "val_f1", "--goal", "max")["adopted"] is None
    other = tmp_path / "other"
    assert j("init", "init", str(other))["root"] == str(other.resolve())

    # Errors: one JSON object, the documented exit code, for every kind of failure.
    (tmp_path / "a-file").write_text("")
    errors = [
        (2, ["show", "nosuchrun"]), (2, ["show", "exp2:last"]), (2, ["run", "exp", "x", "nosuch=1"]),
        (2, ["run", "nosuch", "x"]), (2, ["run", "exp", "x", "--detach", "--repeat", "2"]),
        (2, ["run", "exp", "x", "nosuch=1", "--detach"]), (2, ["wait", "nosuchrun"]), (2, ["wait", base, "--timeout", "soon"]),
        (2, ["runs", "--where", "lr>>1"]), (2, ["compare", "exp", "--by", "nosuch"]), (2, ["journal", "nosuch"]),
        (2, ["note", "nosuch", "text"]), (2, ["ignore", "nosuchrun", "--why", "x"]), (2, ["new", "exp", "-H", "h"]),
        (2, ["new", "x"]), (2, ["verdict", "nosuch"]), (2, ["plot", "nosuchrun"]), (2, ["report", "nosuch"]),
        (2, ["check", "nosuch.py"]), (2, ["check-data", "nosuch.csv", "nosuch2.csv"]), (2, ["rerun", "nosuchrun"]),
        (2, ["sweep", "exp", "nosuch=1,2"]), (2, ["init", str(tmp_path / "a-file" / "lab")]), (2, ["reindex", "--nope"]),
        (2, ["status", "extra"]), (2, ["agent-guide", "--nope"]), (2, ["export", "mlflow", "--nope"]),
        (2, ["try"]), (1, ["loop", "status", "nope"]), (1, ["loop", "log", "nope"]), (1, ["loop", "resume", "nope"]),
        (1, ["loop", "confirm", "nope"]), (1, ["loop", "drop", "nope"]), (1, ["loop", "prompt", "nope"]),
        (1, ["loop", "plot", "nope"]), (1, ["loop", "run", "nope"]), (2, ["loop", "start", "nosuch", "--tag", "u", "--edit", "x"]),
        (2, ["nosuchcommand"]),
    ]
    for code, args in errors:
        assert _json_error(cli, *args)["exit"] == code, args
    assert "ASSAY_LAB" in _json_error(cli, "runs", env={"ASSAY_LAB": str(tmp_path)})["error"]
    assert git(lab.root, "status", "--porcelain", "experiments/exp/train.py") == ""  # the loop left its tree clean
