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


def documented() -> dict[str, object]:
    text = DOCS.read_text()
    block = text.split("<!-- json-contract:begin -->")[1].split("<!-- json-contract:end -->")[0]
    out = {}
    for m in re.finditer(r"^- `assay ([a-z ]+?) --json`: `(.+)`$", block, re.M):
        out[m.group(1)] = parse_schema(m.group(2))
    return out


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
        for word in command.split():
            assert word in getattr(cmd, "commands", {}), f"no command 'assay {command}'"
            cmd = cmd.commands[word]
        assert "--json" in {o for p in cmd.params for o in getattr(p, "opts", [])}, f"assay {command} lacks --json"


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
