"""Who makes the changes: a headless coding agent (any command), or the built-in params proposer.

A Proposer is called by `assay loop run` once per iteration, with the brief and the loop state.
It edits the editable files in the work tree and returns a one-line description of the change,
or None when it made none. It may raise AssayError subclasses for misconfiguration.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from assay.config import dump_yaml, flatten, load_yaml, parse_duration
from assay.errors import ConfigError, did_you_mean
from assay.lab import Lab
from assay.loop.state import LoopState, state_dir


class Proposer(Protocol):
    """Called by `run_loop` once per iteration: `propose` edits the editable files in the work
    tree and returns a one-line description (None: assay names it); after the try, `observe` gets
    the decision (keep, discard, crash, dropped or refused) and the candidate's mean metric."""

    def propose(self, brief: str, st: LoopState) -> str | None: ...

    def observe(self, description: str, decision: str, value: float | None) -> None: ...


@dataclass(frozen=True)
class ProposerOptions:
    """What a proposer factory may use: the loop's lab, state and goal, and the CLI's options."""

    lab: Lab
    state: LoopState
    goal: str
    command: str | None = None  # --agent
    keys: list[str] | None = None  # --param
    timeout: str | None = "30m"  # --agent-timeout


class AgentCommand:
    """Runs `cmd` through the shell with the brief in $ASSAY_PROMPT (and in the file $ASSAY_PROMPT_FILE).

    The agent edits files and may write a one-line description to $ASSAY_DESC_FILE. Its output goes
    to loops/TAG/agent-N.log; it is stopped (whole process group) after `timeout`.
    """

    def __init__(self, lab: Lab, cmd: str, timeout: str | None = "30m") -> None:
        self.lab, self.cmd, self.timeout = lab, cmd, parse_duration(timeout)

    def propose(self, brief: str, st: LoopState) -> str | None:
        d = state_dir(self.lab, st.experiment, st.tag)
        d.mkdir(parents=True, exist_ok=True)
        n = len(list(d.glob("agent-*.log"))) + 1  # agent calls so far in this loop, all sessions
        prompt, desc = d / "prompt.md", d / f"desc-{n}.txt"
        prompt.write_text(brief)
        desc.unlink(missing_ok=True)
        env = {**os.environ, "ASSAY_PROMPT": brief, "ASSAY_PROMPT_FILE": str(prompt), "ASSAY_DESC_FILE": str(desc),
               "ASSAY_LOOP_TAG": st.tag, "ASSAY_AGENT_CALL": str(n)}
        with (d / f"agent-{n}.log").open("wb") as log:
            proc = subprocess.Popen(["bash", "-c", self.cmd], cwd=self.lab.root, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        text = desc.read_text().strip().splitlines() if desc.exists() else []
        return text[0][:200] if text else f"agent iteration {n}"

    def observe(self, description: str, decision: str, value: float | None) -> None:
        return None


class ParamsProposer:
    """Changes one numeric hyperparameter of config.yaml per iteration (no LLM needed).

    With Optuna installed, a TPE sampler proposes values in a log range around the starting
    value and learns from each result; otherwise a random local perturbation (x e^N(0, 0.5)).
    """

    def __init__(self, lab: Lab, st: LoopState, goal: str, keys: list[str] | None = None, seed: int = 0) -> None:
        self.lab, self.goal = lab, goal
        self.config = next((lab.root / p for p in st.editable if p.endswith("config.yaml")), None)
        if self.config is None:
            raise ConfigError("The params proposer edits config.yaml, which is not editable in this loop",
                              f"Start the loop with --edit config.yaml (assay loop start {st.experiment} --tag NEW --edit config.yaml ...)")
        flat = flatten(load_yaml(self.config) or {})
        numeric = {k: v for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"}
        if keys:
            for k in keys:
                if k not in numeric:
                    raise ConfigError(f"Unknown numeric param '{k}' in {self.config}." + did_you_mean(k, numeric),
                                      f"Numeric params: {', '.join(sorted(numeric))}")
            numeric = {k: numeric[k] for k in keys}
        if not numeric:
            raise ConfigError(f"{self.config} has no numeric parameter to tune", "Add one, e.g. lr: 0.001")
        self.start = numeric
        self.rng = random.Random(seed)
        self.study: Any = None
        self.trial: Any = None
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study = optuna.create_study(direction="maximize" if goal == "max" else "minimize",
                                             sampler=optuna.samplers.TPESampler(seed=seed))
        except ImportError:
            self.study = None

    def _suggest(self) -> dict[str, Any]:
        if self.study is not None:
            self.trial = self.study.ask()
            out = {}
            for k, v in self.start.items():
                if isinstance(v, int):
                    out[k] = self.trial.suggest_int(k, max(1, v // 4), max(2, v * 4), log=True) if v > 0 else self.trial.suggest_int(k, v - 4, v + 4)
                elif v > 0:
                    out[k] = self.trial.suggest_float(k, v / 10, v * 10, log=True)
                else:
                    out[k] = self.trial.suggest_float(k, v - 1, v + 1)
            return out
        k = self.rng.choice(sorted(self.start))
        v = self.start[k]
        new = v * math.exp(self.rng.gauss(0, 0.5)) if v else self.rng.gauss(0, 0.1)
        return {k: max(1, round(new)) if isinstance(v, int) else float(f"{new:.4g}")}

    def propose(self, brief: str, st: LoopState) -> str | None:
        data = load_yaml(self.config) or {}
        changes = self._suggest()
        for key, value in changes.items():
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        self.config.write_text(dump_yaml(data))
        return ", ".join(f"{k}={v}" for k, v in changes.items())

    def observe(self, description: str, decision: str, value: float | None) -> None:
        if self.study is not None and self.trial is not None:
            import optuna

            if value is None or not math.isfinite(value):
                self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(self.trial, value)
            self.trial = None
        if decision == "keep":  # local search continues around the new best
            data = flatten(load_yaml(self.config) or {})
            self.start = {k: data.get(k, v) for k, v in self.start.items()}


def _agent(o: ProposerOptions) -> Proposer:
    if not o.command:
        raise ConfigError("The agent proposer needs a command", "assay loop run TAG --agent 'claude -p \"$ASSAY_PROMPT\"'")
    return AgentCommand(o.lab, o.command, o.timeout)


# Built-ins by name; a new proposer is one class and one entry here.
PROPOSERS: dict[str, Callable[[ProposerOptions], Proposer]] = {
    "agent": _agent,
    "params": lambda o: ParamsProposer(o.lab, o.state, o.goal, o.keys),
}


def make_proposer(lab: Lab, st: LoopState, goal: str, agent: str | None, propose: str | None,
                  keys: list[str] | None = None, agent_timeout: str | None = "30m") -> Proposer:
    """The proposer `--agent CMD` or `--propose NAME` asks for.

    Raises:
        ConfigError: both or neither given, or the proposer's own configuration is wrong.
        PluginError: an unknown proposer name (the message lists the known ones).
    """
    if agent and propose and propose != "agent":
        raise ConfigError("Pass either --agent CMD or --propose params, not both", "assay loop run TAG --agent 'claude -p \"$ASSAY_PROMPT\"'")
    from assay import plugins

    name = "agent" if agent else propose
    return plugins.factory("assay.proposers", name, PROPOSERS, "proposer",
                           "Pass --agent 'CMD' or --propose params.")(ProposerOptions(lab, st, goal, agent, keys, agent_timeout))
