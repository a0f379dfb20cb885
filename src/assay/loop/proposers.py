"""Who makes the changes: a headless coding agent (any command), or the built-in params proposer.

A Proposer is called by `assay loop run` once per iteration, with the brief and the loop state.
It edits the editable files in the work tree and returns a one-line description of the change,
or None when it made none. It may raise AssayError subclasses for misconfiguration.
"""

from __future__ import annotations

import io
import math
import os
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assay.config import flatten, load_yaml, parse_duration
from assay.errors import ConfigError, did_you_mean
from assay.lab import Lab
from assay.loop.state import LoopState, state_dir
from assay.sweep.space import Choice, Dimension, Range, SearchSpace


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
    space: SearchSpace | None = None  # --space


class AgentCommand:
    """Runs `cmd` through the shell with the brief in $ASSAY_PROMPT (and in the file $ASSAY_PROMPT_FILE).

    The agent edits files and may write a one-line description to $ASSAY_DESC_FILE. Its output goes
    to loops/TAG/agent-N.log; it is stopped (whole process group) after `timeout`.
    """

    def __init__(self, lab: Lab, cmd: str, timeout: str | None = "30m") -> None:
        self.lab, self.cmd, self.timeout = lab, cmd, parse_duration(timeout)

    def propose(self, brief: str, st: LoopState) -> str | None:
        return self.call(brief, st, self.lab.root)

    def call(self, brief: str, st: LoopState, cwd: Path, env: dict[str, str] | None = None) -> str:
        """One agent call in `cwd` (a parallel loop calls several at once, each in its own worktree)."""
        d = state_dir(self.lab, st.experiment, st.tag)
        d.mkdir(parents=True, exist_ok=True)
        n = len(list(d.glob("agent-*.log")))  # agent calls so far in this loop, all sessions
        while True:  # claim the next number by creating its log: concurrent calls never share one
            n += 1
            try:
                log = (d / f"agent-{n}.log").open("xb")
                break
            except FileExistsError:
                continue
        prompt, desc = d / ("prompt.md" if env is None else f"prompt-{n}.md"), d / f"desc-{n}.txt"
        prompt.write_text(brief)
        desc.unlink(missing_ok=True)
        env = {**os.environ, **(env or {}), "ASSAY_PROMPT": brief, "ASSAY_PROMPT_FILE": str(prompt),
               "ASSAY_DESC_FILE": str(desc), "ASSAY_LOOP_TAG": st.tag, "ASSAY_AGENT_CALL": str(n)}
        with log:
            proc = subprocess.Popen(["bash", "-c", self.cmd], cwd=cwd, env=env, stdout=log,
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


class Exhausted(ConfigError):
    """Every configuration of the params proposer's search space has been tried: the loop stops."""


def infer_space(config: dict[str, Any], keys: list[str] | None = None, source: str = "config.yaml") -> SearchSpace:
    """The search space the params proposer assumes when none is given, from config.yaml's values.

    It never leaves what a value's type and sign declare, and stays near the value:
      - an int stays an int; a positive int stays >= 1, in [max(1, v // 4), 4 v] (log scale);
        0 stays in [0, 4]; a negative int stays in [4 v, -1];
      - a float in (0, 1] is a fraction: it stays in [v / 10, 1] (log scale), never above 1;
      - a float above 1 stays in [v / 10, 10 v]; a negative float stays negative, in [10 v, v / 10];
        0.0 is a fraction in [0, 1];
      - booleans, text, lists and `seed` are never changed.
    A search space given with --space or `loop_space:` replaces these rules.

    Raises:
        ConfigError: an unknown key in `keys`, or no numeric parameter at all.
    """
    flat = flatten(config)
    numeric = {k: v for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed"}
    if keys:
        for k in keys:
            if k not in numeric:
                raise ConfigError(f"Unknown numeric param '{k}' in {source}." + did_you_mean(k, numeric),
                                  f"Numeric params: {', '.join(sorted(numeric))}")
        numeric = {k: numeric[k] for k in keys}
    if not numeric:
        raise ConfigError(f"{source} has no numeric parameter to tune", "Add one, e.g. lr: 0.001")
    return SearchSpace({k: _inferred_range(v) for k, v in numeric.items()}, {}, {k: source for k in numeric})


def _inferred_range(v: float) -> Range:
    if isinstance(v, int):
        if v > 0:
            return Range(max(1, v // 4), max(v * 4, 2), log=True, integer=True)
        return Range(0, 4, integer=True) if v == 0 else Range(v * 4, -1, integer=True)
    if 0 < v <= 1:
        return Range(v / 10, 1.0, log=True)
    if v > 1:
        return Range(v / 10, v * 10, log=True)
    return Range(0.0, 1.0) if v == 0 else Range(v * 10, v / 10)


def _round(value: Any, dim: Dimension) -> Any:
    """A proposed value as config.yaml will hold it: ints whole, floats to 4 significant digits,
    always inside the dimension's bounds."""
    if isinstance(dim, Choice):
        return value
    if dim.integer:
        return int(min(max(round(value), math.ceil(dim.low)), math.floor(dim.high)))
    return min(max(float(f"{value:.4g}"), dim.low), dim.high)


def _norm(value: Any) -> Any:
    """Equal configs compare equal whatever their spelling (4 == 4.0, 1e-3 == 0.001)."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    return value


Point = tuple[tuple[str, Any], ...]


class ParamsProposer:
    """Changes config.yaml's hyperparameters within a search space (no LLM needed).

    The space comes from --space (sweep syntax: "lr=log(1e-5,1e-2)" "depth=range(2,9)"), else
    from `loop_space:` in experiment.yaml, else from config.yaml's values (infer_space says how).
    With Optuna installed a TPE sampler proposes every dimension and learns from each result;
    otherwise one dimension moves at a time, by a random local step from the best values. A
    configuration already tried in this loop (results.tsv, refs/assay/TAG/tried/N) is never
    proposed again: a repeat is drawn anew. config.yaml is rewritten from the best commit's
    copy, keeping its comments and layout, so a proposal after a crash is a new idea.
    """

    DRAWS = 200  # attempts at a configuration not yet tried, before the space counts as exhausted

    def __init__(self, lab: Lab, st: LoopState, goal: str, keys: list[str] | None = None, seed: int = 0,
                 space: SearchSpace | None = None) -> None:
        self.lab, self.goal = lab, goal
        found = next((lab.root / p for p in st.editable if p.endswith("config.yaml")), None)
        if found is None:
            raise ConfigError("The params proposer edits config.yaml, which is not editable in this loop",
                              f"Start the loop with --edit config.yaml (assay loop start {st.experiment} --tag NEW --edit config.yaml ...)")
        self.config = found
        config = load_yaml(self.config) or {}
        self.space = self._space(lab, st, config, keys, space)
        flat = flatten(config)
        self.start = {k: flat.get(k) for k in self.space.dims}  # the best values: where local steps start
        self.rng = random.Random(seed)
        self.tried: dict[Point, float | None] = self._tried(st)  # point -> its value (None: crashed or unknown)
        self.tried.setdefault(self._point(self.start), None)
        self.pending: Point | None = None
        self.study: Any = None
        self.trial: Any = None
        try:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.study = optuna.create_study(direction="maximize" if goal == "max" else "minimize",
                                             sampler=optuna.samplers.TPESampler(seed=seed))
        except ImportError:
            self.study = None

    def _space(self, lab: Lab, st: LoopState, config: dict[str, Any], keys: list[str] | None,
               space: SearchSpace | None) -> SearchSpace:
        from assay.experiment import load_experiment, loop_space
        from assay.sweep.space import validate_space

        if space is None:
            space = loop_space(load_experiment(lab, st.experiment))
        if space is None:
            return infer_space(config, keys, str(self.config))
        if space.fixed:
            k, v = next(iter(space.fixed.items()))
            raise ConfigError(f"The loop's search space fixes {k}={v} ({space.sources.get(k, 'the space')}); the loop only varies params",
                              f"Set {k}: {v} in {self.config.name} instead, or give it a range, e.g. {k}=interval(LOW,HIGH).")
        validate_space(space, config, str(self.config))
        if added := [k for k in space.dims if k.startswith("+")]:
            raise ConfigError(f"The loop cannot add '{added[0]}' ({space.sources.get(added[0], 'the space')}): it edits the params config.yaml has",
                              f"Add {added[0][1:]} to {self.config.name} with its starting value.")
        if keys:
            for k in keys:
                if k not in space.dims:
                    raise ConfigError(f"--param {k} is not in the search space (dimensions: {', '.join(space.dims)})."
                                      + did_you_mean(k, space.dims), "Pass one of its dimensions, or add it to the space.")
            space = SearchSpace({k: space.dims[k] for k in keys}, {}, space.sources)
        return space

    def _point(self, values: dict[str, Any]) -> Point:
        return tuple((k, _norm(values.get(k))) for k in self.space.dims)

    def _tried(self, st: LoopState) -> dict[Point, float | None]:
        """Every configuration this loop has run, from the commits of results.tsv and the tried refs."""
        from assay.errors import GitError
        from assay.gitops import Repo
        from assay.loop import results

        try:
            repo = Repo(self.config.parent)
            rel = repo.rel(self.config)
        except (GitError, ValueError):
            return {}
        found: dict[Point, float | None] = {}
        rows = [r for r in results.read(self.lab.experiment_dir(st.experiment) / "results.tsv") if r.tag == st.tag]
        refs = repo.git("for-each-ref", "--format=%(objectname)", f"refs/assay/{st.tag}/tried/", check=False).split()
        for commit, value in [*((r.commit, r.value) for r in rows), *((c, None) for c in refs)]:
            text = repo.git("show", f"{commit}:{rel}", check=False)
            import yaml

            try:
                data = yaml.safe_load(text) if text else None
            except yaml.YAMLError:  # a candidate that broke config.yaml: no point to remember
                continue
            if isinstance(data, dict):
                point = self._point(flatten(data))
                if found.get(point) is None:
                    found[point] = value
        return found

    def _ask_optuna(self) -> dict[str, Any]:
        self.trial = self.study.ask()
        out = {}
        for k, dim in self.space.dims.items():
            if isinstance(dim, Choice):
                out[k] = self.trial.suggest_categorical(k, list(dim.values))
            elif dim.integer:
                out[k] = self.trial.suggest_int(k, math.ceil(dim.low), math.floor(dim.high), log=dim.log,
                                                step=int(dim.step) if dim.step and not dim.log else 1)
            else:
                out[k] = self.trial.suggest_float(k, dim.low, dim.high, log=dim.log, step=None if dim.log else dim.step)
        return {k: _round(v, self.space.dims[k]) for k, v in out.items()}

    def _local_step(self, wide: bool) -> dict[str, Any]:
        """One dimension moved from the best values: a local step, or (`wide`) anywhere in its range."""
        k = self.rng.choice(sorted(self.space.dims))
        dim, v = self.space.dims[k], self.start.get(k)
        if isinstance(dim, Choice) or wide or not isinstance(v, (int, float)) or dim.step is not None:
            new = dim.sample(self.rng)
        elif dim.log and v > 0:
            new = v * math.exp(self.rng.gauss(0, 0.5))
        else:
            new = v + self.rng.gauss(0, (dim.high - dim.low) / 4)
        return {**self.start, k: _round(new, dim)}

    def _draw(self) -> dict[str, Any]:
        """A configuration not tried yet; Optuna's repeats are told the value the first one got."""
        import optuna

        for attempt in range(self.DRAWS):
            if self.study is not None and attempt < self.DRAWS // 2:
                values = self._ask_optuna()
                known = self.tried.get(self._point(values))
                if self._point(values) not in self.tried:
                    return values
                if known is None:
                    self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)
                else:
                    self.study.tell(self.trial, known)
                self.trial = None
                continue
            values = self._local_step(wide=attempt >= self.DRAWS // 4)
            if self._point(values) not in self.tried:
                return values
        for point in self.space.grid() if self.space.size() is not None else []:
            values = {**self.start, **point}
            if self._point(values) not in self.tried:
                return values
        raise Exhausted(f"Every configuration of the search space ({', '.join(f'{k}={d.describe()}' for k, d in self.space.dims.items())}) "
                        f"was tried, or {self.DRAWS} draws found none new",
                        "Widen the space: assay loop run TAG --propose params --space \"KEY=interval(LOW,HIGH)\" ...")

    def propose(self, brief: str, st: LoopState) -> str | None:
        values = self._draw()
        changes = {k: v for k, v in values.items() if _norm(v) != _norm(self.start.get(k))}
        self.pending = self._point(values)
        self.tried[self.pending] = None
        self.config.write_text(rewrite_config(self._best_text(st), values))
        return ", ".join(f"{k}={v}" for k, v in (changes or values).items())

    def _best_text(self, st: LoopState) -> str:
        """config.yaml as the best commit has it (a crashed candidate's edits may still be in the work tree)."""
        from assay.errors import GitError
        from assay.gitops import Repo

        if st.best_commit:
            try:
                repo = Repo(self.config.parent)
                return repo.git("show", f"{st.best_commit}:{repo.rel(self.config)}")
            except (GitError, ValueError):
                pass  # no such commit or file there: the work tree's copy is the best we have
        return self.config.read_text(encoding="utf-8")

    def observe(self, description: str, decision: str, value: float | None) -> None:
        measured = value is not None and math.isfinite(value) and decision in ("keep", "discard")
        if self.pending is not None and measured:
            self.tried[self.pending] = value
        if self.study is not None and self.trial is not None:
            import optuna

            if measured:
                self.study.tell(self.trial, value)
            else:
                self.study.tell(self.trial, state=optuna.trial.TrialState.FAIL)
            self.trial = None
        if decision == "keep" and self.pending is not None:  # local search continues around the new best
            self.start = dict(self.pending)
        self.pending = None


def _yaml_float(value: float) -> str:
    """A float PyYAML reads back as a float (it reads 1e-05 as text; 1.0e-05 as a number)."""
    text = repr(value) if not math.isfinite(value) else f"{value:.10g}"
    mantissa, e, exponent = text.partition("e")
    if math.isfinite(value) and "." not in mantissa:
        mantissa += ".0"
    return {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(text, mantissa + (e + exponent if e else ""))


def rewrite_config(text: str, values: dict[str, Any]) -> str:
    """`text` (a config.yaml) with the flat `values` set, comments, key order, quoting and
    indentation kept: only the changed values' lines differ (ruamel.yaml round-trip)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    _, indent, offset = load_yaml_guess_indent(text or "{}")
    y = YAML()
    y.indent(mapping=indent or 2, sequence=indent or 2, offset=offset or 0)
    y.width = 4096  # never rewrap a long line
    y.preserve_quotes = True
    y.representer.add_representer(float, lambda r, v: r.represent_scalar("tag:yaml.org,2002:float", _yaml_float(v)))
    data = y.load(text) or {}
    for key, value in values.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if _norm(node.get(leaf)) != _norm(value):  # an unchanged value keeps its spelling (1e-3 stays 1e-3)
            node[leaf] = value
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def _agent(o: ProposerOptions) -> Proposer:
    if not o.command:
        raise ConfigError("The agent proposer needs a command", "assay loop run TAG --agent 'claude -p \"$ASSAY_PROMPT\"'")
    return AgentCommand(o.lab, o.command, o.timeout)


# Built-ins by name; a new proposer is one class and one entry here.
PROPOSERS: dict[str, Callable[[ProposerOptions], Proposer]] = {
    "agent": _agent,
    "params": lambda o: ParamsProposer(o.lab, o.state, o.goal, o.keys, space=o.space),
}


def make_proposer(lab: Lab, st: LoopState, goal: str, agent: str | None, propose: str | None,
                  keys: list[str] | None = None, agent_timeout: str | None = "30m",
                  space: list[str] | None = None) -> Proposer:
    """The proposer `--agent CMD` or `--propose NAME` asks for; `space` is --space's items in the
    sweep syntax (`max_features=interval(0.1,1.0)`), for the params proposer.

    Raises:
        ConfigError: both or neither given, or the proposer's own configuration is wrong.
        PluginError: an unknown proposer name (the message lists the known ones).
    """
    if agent and propose and propose != "agent":
        raise ConfigError("Pass either --agent CMD or --propose params, not both", "assay loop run TAG --agent 'claude -p \"$ASSAY_PROMPT\"'")
    from assay import plugins

    if space and (agent or propose != "params"):
        raise ConfigError("--space is for the params proposer", "assay loop run TAG --propose params --space \"lr=log(1e-5,1e-2)\"")
    from assay.sweep.space import space_from_args

    name = "agent" if agent else propose
    opts = ProposerOptions(lab, st, goal, agent, keys, agent_timeout, space_from_args(space) if space else None)
    return plugins.factory("assay.proposers", name, PROPOSERS, "proposer", "Pass --agent 'CMD' or --propose params.")(opts)
