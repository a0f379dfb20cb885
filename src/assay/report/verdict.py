"""Hypothesis verdicts: supported, refuted or inconclusive, from the experiment's criteria and its runs.

A criterion on a noisy metric is judged on the confidence interval of the mean over seeds, never
on one run: it *holds* when the whole interval satisfies it, *fails* when the whole interval is on
the other side, and is *undecided* otherwise. Runs are grouped into configurations (same params,
any seed); a configuration with one run borrows the seed noise pooled from the others, and with no
noise estimate at all it stays undecided.

Per configuration: supported when every success criterion holds and no failure criterion does;
refuted when a failure criterion holds (or, with no failure criteria declared, a success criterion
fails); inconclusive otherwise. Overall: supported if some configuration is, refuted if every
configuration is, inconclusive otherwise. Looking at k configurations and keeping the one that
passes is k chances to be lucky, so the confidence is split over them (Bonferroni).

A comparative criterion, `val_f1[loss=log_loss] > val_f1[loss=hinge] + 0.005`, is judged once for
the experiment, on the confidence interval of the difference of the two configurations' means
(Welch's t with both sides repeated, else the pooled seed noise). The hypothesis is supported when
the absolute criteria are (by some configuration, as above) and every comparative success
criterion holds; refuted when a failure criterion holds, or, with none declared, when a success
criterion fails.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from assay import identity
from assay.experiment import Criterion, Experiment, load_experiment
from assay.lab import Lab
from assay.report.evidence import Config, RunView, Spread, check_value, group_configs, load_runs, rel, spread, usable

OUTCOMES = ("holds", "fails", "undecided")
VERDICTS = ("supported", "refuted", "inconclusive")


@dataclass(frozen=True)
class Judged:
    """One criterion judged on one configuration."""

    kind: str  # "success" | "failure"
    criterion: Criterion
    outcome: str
    values: dict[str, float]  # run id -> value used
    stats: dict[str, Any]
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "criterion": self.criterion.text, "metric": self.criterion.metric,
                "outcome": self.outcome, "why": self.why, **self.stats, "values": self.values}


@dataclass
class ConfigVerdict:
    label: str
    params: dict[str, Any]
    runs: list[str]
    sources: list[str]
    verdict: str
    reason: str
    judged: list[Judged] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "params": self.params, "runs": self.runs, "sources": self.sources,
                "verdict": self.verdict, "reason": self.reason, "criteria": [j.to_dict() for j in self.judged]}


@dataclass
class Verdict:
    """The answer of `assay verdict`, with everything that decided it."""

    experiment: str
    hypothesis: str
    verdict: str
    reason: str
    confidence: float
    per_config_confidence: float
    value: str
    success: list[str]
    failure: list[str]
    configurations: list[ConfigVerdict]
    decided_by: list[int]
    excluded: list[dict[str, Any]]
    hint: str | None = None
    comparisons: list[Judged] = field(default_factory=list)  # comparative criteria, judged once
    confirmation: list[dict[str, Any]] | None = None  # per loop of a loop experiment: its held-out confirmation

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "hypothesis": self.hypothesis, "verdict": self.verdict,
                "reason": self.reason, "hint": self.hint, "confidence": self.confidence,
                "per_config_confidence": self.per_config_confidence, "value": self.value,
                "criteria": {"success": self.success, "failure": self.failure},
                "configurations": [c.to_dict() for c in self.configurations], "decided_by": self.decided_by,
                "comparisons": [j.to_dict() for j in self.comparisons], "excluded": self.excluded,
                "confirmation": self.confirmation}


def _pooled(configs_values: list[list[float]]) -> tuple[float | None, int]:
    from assay.stats import pooled_sigma

    return pooled_sigma(configs_values)


def judge(c: Criterion, values: list[float], confidence: float, pooled: tuple[float | None, int],
          examples: Callable[[], tuple[list[float], str] | None] | None = None) -> tuple[str, dict[str, Any], str]:
    """(outcome, stats, why) for criterion `c` over the values of one configuration's runs.

    When seed noise is zero (every repeat gave the same value) the t interval has no width and
    measures nothing: the criterion is undecided, unless `examples` returns the per-example values
    (assay.log_values) of one of the runs and the run id, which are then bootstrapped.
    """
    s = spread(values, confidence, pooled)
    stats = s.to_dict()
    if s.lo is None or s.hi is None:
        return "undecided", stats, (f"1 run ({c.metric}={s.mean:.4g}) and no repeats anywhere to measure seed noise: "
                                    "one run cannot decide a noisy metric")
    ci = f"mean {s.mean:.4g}, {confidence:.1%} CI [{s.lo:.4g}, {s.hi:.4g}], n={s.n}"
    if s.sigma_source == "pooled":
        ci += " (noise pooled from other configurations)"
    if c.op == "==":  # an exact check: every seed giving the value is the evidence, noise or none
        if s.lo == s.hi == c.value:
            return "holds", stats, f"{ci}: every value equals {c.value:g}"
        if not s.lo <= c.value <= s.hi:
            return "fails", stats, f"{ci} excludes {c.value:g}"
        return "undecided", stats, f"{ci} contains {c.value:g} but is not a point"
    if s.lo == s.hi:
        boot = _bootstrap(c, s.mean, s.n, confidence, examples() if examples else None)
        if isinstance(boot, str):
            return "undecided", stats, boot
        s, stats, ci = boot
    assert s.lo is not None and s.hi is not None  # checked above; a bootstrap interval has both ends
    if c.holds(s.lo) and c.holds(s.hi):
        return "holds", stats, f"{ci} lies entirely {c.op} {c.value:g}"
    if not c.holds(s.lo) and not c.holds(s.hi):
        return "fails", stats, f"{ci} lies entirely outside {c.op} {c.value:g}"
    more = "more examples" if s.sigma_source == "bootstrap" else "more seeds"
    return "undecided", stats, f"{ci} straddles {c.value:g}: {more} would narrow it"


def _bootstrap(c: Criterion, mean: float, n: int, confidence: float,
               examples: tuple[list[float], str] | None) -> tuple[Spread, dict[str, Any], str] | str:
    """The interval of a deterministic configuration from a bootstrap over one run's examples,
    or why there is none."""
    from assay.stats import BOOTSTRAP_RESAMPLES, bootstrap_interval

    zero = (f"deterministic: seed noise is zero, the interval measures nothing ({n} run(s), every {c.metric} = {mean:.6g}); "
            f"log per-example outcomes with assay.log_values(\"{c.metric}\", values) to judge it by a bootstrap over examples")
    if not examples:
        return zero
    values, run = examples
    ex_mean = statistics.fmean(values)
    if not math.isclose(ex_mean, mean, rel_tol=1e-6, abs_tol=1e-9):
        return (f"{zero}. The {len(values)} values run {run} logged for {c.metric} average {ex_mean:.6g}, not "
                f"{mean:.6g}: they are not the examples of this metric")
    m, lo, hi = bootstrap_interval(values, confidence)
    s = Spread(n, m, None, lo, hi, "bootstrap")
    stats = {**s.to_dict(), "examples": len(values), "resamples": BOOTSTRAP_RESAMPLES, "examples_of": run}
    ci = (f"deterministic: seed noise is zero, so the interval is a bootstrap over the {len(values)} examples of run "
          f"{run} ({BOOTSTRAP_RESAMPLES} resamples): mean {m:.4g}, {confidence:.1%} CI [{lo:.4g}, {hi:.4g}]")
    return s, stats, ci


def example_values(runs: list[RunView], metric: str) -> tuple[list[float], str] | None:
    """The per-example values of `metric` (assay.log_values) of the latest run that logged them,
    and that run's id. Repeats of deterministic code logged the same examples: one run's are all."""
    from assay.tracking import read_values

    for r in reversed(runs):
        values = read_values(r.path, metric)
        if values:
            return values, r.id
    return None


def _selected(runs: list[RunView], selector: dict[str, str]) -> list[RunView]:
    """Runs whose params equal the selector's (values typed as on the command line: 1e-4 == 0.0001)."""
    from assay.config import flatten, parse_value

    want = {k: parse_value(v) for k, v in selector.items()}
    out = []
    for r in runs:
        params = flatten(r.record.get("params") or {})
        if all(k in params and (params[k] == v or str(params[k]) == str(v)) for k, v in want.items()):
            out.append(r)
    return out


def judge_comparison(c: Criterion, runs: list[RunView], value: str, confidence: float,
                     pooled: tuple[float | None, int]) -> Judged:
    """A comparative criterion over the experiment's usable runs: the CI of mean(left) - mean(right)."""
    from assay.stats import difference_interval

    assert c.left is not None and c.right is not None
    sides = []
    for sel in (c.left, c.right):
        picked = _selected(runs, sel)
        configs, varying = group_configs(picked)
        label = ", ".join(f"{k}={v}" for k, v in sel.items())
        if len(configs) != 1:
            why = (f"no finished run has {label}" if not configs else
                   f"[{label}] matches {len(configs)} configurations (they differ in {', '.join(varying)}): pin those params too")
            return Judged("", c, "undecided", {}, {"n": 0}, why)
        used = [(r, v) for r in configs[0].runs if (v := r.value(c.metric, value)) is not None and math.isfinite(v)]
        if not used:
            return Judged("", c, "undecided", {}, {"n": 0}, f"no run with {label} logged {c.metric}")
        sides.append(({r.id: v for r, v in used}, [rel(r.path / "run.json", r.path.parent.parent) for r, _ in used]))
    (a, sources_a), (b, sources_b) = sides
    na, nb = len(a), len(b)
    interval = difference_interval(list(a.values()), list(b.values()), confidence, pooled)
    if interval is None:
        diff = statistics.fmean(a.values()) - statistics.fmean(b.values())
        stats = {"n": [na, nb], "difference": diff, "ci": None, "sigma_source": "none", "sources": sources_a + sources_b}
        return Judged("", c, "undecided", {**a, **b}, stats,
                      f"difference {diff:.4g} from {na} and {nb} run(s), and no repeats anywhere to measure seed noise")
    diff, lo, hi, source = interval
    stats = {"n": [na, nb], "difference": diff, "ci": [lo, hi], "sigma_source": source, "sources": sources_a + sources_b}
    ci = f"difference {diff:.4g}, {confidence:.1%} CI [{lo:.4g}, {hi:.4g}] (n={na} vs {nb})"
    if c.holds(lo) and c.holds(hi):
        return Judged("", c, "holds", {**a, **b}, stats, f"{ci} lies entirely {c.op} {c.value:g}")
    if not c.holds(lo) and not c.holds(hi):
        return Judged("", c, "fails", {**a, **b}, stats, f"{ci} lies entirely outside {c.op} {c.value:g}")
    return Judged("", c, "undecided", {**a, **b}, stats, f"{ci} straddles {c.value:g}: more seeds would narrow it")


def _with_comparisons(overall: str, reason: str, comps: list[Judged], has_absolute: bool,
                      has_failure: bool) -> tuple[str, str]:
    """Fold the comparative criteria into the verdict of the absolute ones."""
    if not comps:
        return overall, reason
    hit = [j for j in comps if j.kind == "failure" and j.outcome == "holds"]
    if hit:
        return "refuted", f"failure criterion {hit[0].criterion.text} holds: {hit[0].why}"
    if overall == "refuted":
        return overall, reason
    succ = [j for j in comps if j.kind == "success"]
    missed = [j for j in succ if j.outcome == "fails"]
    if missed and not has_failure:
        return "refuted", f"success criterion {missed[0].criterion.text} fails: {missed[0].why}"
    absolute_ok = overall == "supported" or not has_absolute
    fail_open = [j for j in comps if j.kind == "failure" and j.outcome != "fails"]
    if absolute_ok and all(j.outcome == "holds" for j in succ) and not fail_open:
        parts = ([reason] if has_absolute else []) + [f"{j.criterion.text}: {j.why}" for j in succ]
        return "supported", "; ".join(parts)
    if not absolute_ok:
        return overall, reason
    pending = next((j for j in succ if j.outcome != "holds"), None) or fail_open[0]
    return "inconclusive", f"{pending.criterion.text}: {pending.why}"


def _config_verdict(judged: list[Judged], has_failure: bool) -> tuple[str, str]:
    succ = [j for j in judged if j.kind == "success"]
    fail = [j for j in judged if j.kind == "failure"]
    hit = [j for j in fail if j.outcome == "holds"]
    if hit:
        return "refuted", f"failure criterion {hit[0].criterion.text} holds: {hit[0].why}"
    missed = [j for j in succ if j.outcome == "fails"]
    if succ and all(j.outcome == "holds" for j in succ) and all(j.outcome == "fails" for j in fail):
        return "supported", "; ".join(f"{j.criterion.text}: {j.why}" for j in succ)
    if succ and all(j.outcome == "holds" for j in succ):
        open_ = next(j for j in fail if j.outcome != "fails")
        return "inconclusive", f"success criteria hold but failure criterion {open_.criterion.text} is not excluded: {open_.why}"
    if missed and not has_failure:
        return "refuted", f"success criterion {missed[0].criterion.text} fails: {missed[0].why}"
    if missed:
        return "inconclusive", (f"success criterion {missed[0].criterion.text} fails ({missed[0].why}) but no failure "
                                "criterion holds: the result lies between the two")
    pending = next((j for j in judged if j.outcome == "undecided"), None)
    return "inconclusive", f"{pending.criterion.text}: {pending.why}" if pending else "no criterion decided"


def verdict(lab: Lab, name: str, confidence: float = 0.95, value: str = "last", where: dict[str, Any] | None = None,
            runs: list[RunView] | None = None) -> Verdict:
    """Judge experiment `name`'s hypothesis from its finished, non-ignored runs.

    Args:
        confidence: overall confidence; each of k configurations is judged at 1 - (1 - confidence) / k.
        value: each run's `last` (final) or `best` value of a criterion's metric.
        where: only runs whose params equal these (pins one configuration: k = 1).
        runs: the runs to judge, when the caller has them (the dashboard reads them from the
            index); by default every run folder of the experiment is read.

    Raises:
        ConfigError: unknown experiment, bad `value` or `confidence`.

    Example:
        >>> verdict(lab, "digits").verdict
        'supported'
    """
    from assay.errors import ConfigError

    check_value(value)
    if not 0.5 <= confidence < 1:
        raise ConfigError(f"--confidence must be in [0.5, 1), got {confidence}", "Pass e.g. --confidence 0.95.")
    exp = load_experiment(lab, name)
    all_succ, all_fail = exp.success_criteria, exp.failure_criteria
    succ, fail = [c for c in all_succ if not c.comparative], [c for c in all_fail if not c.comparative]
    comparative = [(kind, c) for kind, cs in (("success", all_succ), ("failure", all_fail)) for c in cs if c.comparative]
    runs = load_runs(exp) if runs is None else runs
    excluded = _excluded(exp, runs)
    good = [r for r in usable(runs) if _matches(r, where)]
    base: dict[str, Any] = dict(experiment=name, hypothesis=exp.hypothesis, confidence=confidence, value=value,
                success=[c.text for c in all_succ], failure=[c.text for c in all_fail], excluded=excluded)
    if not all_succ and not all_fail:
        return _with_loops(lab, exp, Verdict(**base, verdict="inconclusive", reason="the experiment declares no success or failure criteria",
                       per_config_confidence=confidence, configurations=[], decided_by=[],
                       hint=f"Add e.g. `success: {exp.metric} {'>=' if exp.goal == 'max' else '<='} <target>` to {exp.file}."))
    configs, varying = group_configs(good)
    metrics = sorted({c.metric for c in (*all_succ, *all_fail)})
    # Noise pooled per metric over every configuration's repeats: the same seeds-only spread, whatever the params.
    pooled = {m: _pooled([[v for r in cfg.runs if (v := r.value(m, value)) is not None and math.isfinite(v)]
                          for cfg in configs]) for m in metrics}
    k = max(1, len(configs))
    per = 1 - (1 - confidence) / k
    out: list[ConfigVerdict] = []
    for cfg in configs:
        judged = []
        for kind, crits in (("success", succ), ("failure", fail)):
            for c in crits:
                vals = {r.id: v for r in cfg.runs if (v := r.value(c.metric, value)) is not None and math.isfinite(v)}
                if not vals:
                    judged.append(Judged(kind, c, "undecided", {}, {"n": 0}, f"no run of this configuration logged {c.metric}"))
                    continue
                outcome, stats, why = judge(c, list(vals.values()), per, pooled[c.metric],
                                            examples=functools.partial(example_values, cfg.runs, c.metric))
                judged.append(Judged(kind, c, outcome, vals, stats, why))
        said, reason = _config_verdict(judged, bool(fail))
        out.append(ConfigVerdict(cfg.label(varying), cfg.params, [r.id for r in cfg.runs],
                                 [rel(r.path / "run.json", exp.path) for r in cfg.runs], said, reason, judged))
    # New seeds, not the ones already run: a seed run twice measures the same draw (and counts once).
    next_seed = max((r.seed for r in good if isinstance(r.seed, int)), default=-1) + 1
    if succ or fail:
        overall, reason, decided, hint = _overall(out, exp, next_seed, configs)
    else:  # only comparisons: configurations are not judged one by one
        overall, reason, decided, hint, out = "inconclusive", "", [], None, []
    per_comparison = 1 - (1 - confidence) / max(1, len(comparative))
    if not (succ or fail):
        per = per_comparison
    comps = [replace(judge_comparison(c, good, value, per_comparison, pooled[c.metric]), kind=kind) for kind, c in comparative]
    overall, reason = _with_comparisons(overall, reason, comps, bool(succ or fail), bool(all_fail))
    if comps and not good:
        overall, reason = "inconclusive", "no finished, non-ignored run to judge"
    open_comp = next((j for j in comps if j.outcome == "undecided" and j.values), None)
    if overall == "inconclusive" and hint is None and open_comp is not None:
        c = open_comp.criterion
        sides = [group_configs(_selected(good, sel))[0] for sel in (c.left or {}, c.right or {})]
        hint = "Add seeds to both sides: " + "; ".join(
            rerun_hint(exp, side[0], next_seed) if len(side) == 1 else
            f"assay run {exp.name} repeats {' '.join(f'{k}={v}' for k, v in sel.items())} seed={next_seed} --repeat 3"
            for side, sel in zip(sides, (c.left or {}, c.right or {})))
    return _with_loops(lab, exp, Verdict(**base, verdict=overall, reason=reason, per_config_confidence=per,
                                         configurations=out, decided_by=decided, hint=hint, comparisons=comps))


def _with_loops(lab: Lab, exp: Experiment, v: Verdict) -> Verdict:
    """A loop experiment's verdict says whether each loop's gain survived the held-out split
    (`assay loop confirm`), or that it is unconfirmed and how many looks at validation produced it."""
    from assay.loop.confirmation import loop_confirmations, overturned_by

    if notes := loop_confirmations(lab, exp):
        v.confirmation = notes
        v.reason = "; ".join([v.reason, *(n["text"] for n in notes)])
        support = [r for i in v.decided_by for r in v.configurations[i].runs] if v.verdict == "supported" else []
        if n := overturned_by(lab, exp, notes, support):
            v.verdict = "inconclusive"
            v.reason = (f"supported only by runs loop {n['tag']} selected on the validation split, and its gain does not "
                        f"survive the held-out split; {v.reason}")
    return v


def _overall(out: list[ConfigVerdict], exp: Experiment, next_seed: int,
             configs: list[Config]) -> tuple[str, str, list[int], str | None]:
    if not out:
        return ("inconclusive", "no finished, non-ignored run to judge", [],
                f"Run it: assay run {exp.name} baseline --repeat 3")
    sup = [i for i, c in enumerate(out) if c.verdict == "supported"]
    if sup:
        return "supported", f"{out[sup[0]].label}: {out[sup[0]].reason}", sup, None
    ref = [i for i, c in enumerate(out) if c.verdict == "refuted"]
    if len(ref) == len(out):
        lead = f"{out[0].label}: {out[0].reason}" if len(out) == 1 else f"all {len(out)} configurations refuted; {out[0].label}: {out[0].reason}"
        return "refuted", lead, ref, None
    open_ = [i for i, c in enumerate(out) if c.verdict == "inconclusive"]
    hint = None
    # More seeds narrow an interval over seeds; one over examples (a bootstrap) needs more examples instead.
    if any(("one run cannot decide" in j.why or "straddles" in j.why) and j.stats.get("sigma_source") != "bootstrap"
           for i in open_ for j in out[i].judged):
        hint = "Add seeds to narrow the interval: " + rerun_hint(exp, configs[open_[0]], next_seed)
    return "inconclusive", f"{out[open_[0]].label}: {out[open_[0]].reason}", open_, hint


def rerun_hint(exp: Experiment, cfg: Config, next_seed: int) -> str:
    """The command that adds seeds to configuration `cfg`: its entry point and every param that
    differs from config.yaml, so following it extends these runs and not the defaults. When the
    code changed since they ran, says so and how to run the recorded version instead."""
    import shlex

    from assay.config import flatten

    defaults = flatten(exp.default_params())
    parts = [f"assay run {exp.name} repeats"]
    if cfg.entry and cfg.entry != exp.entry:
        parts.append(f"--entry {shlex.quote(cfg.entry)}")
    for key, v in flatten(cfg.params).items():
        if key != "seed" and (key not in defaults or defaults[key] != v):
            text = v if isinstance(v, str) else json.dumps(v)
            parts.append(shlex.quote(f"{'' if key in defaults else '+'}{key}={text}"))
    parts.append(f"seed={next_seed} --repeat 3")
    command = " ".join(parts)
    if cfg.code and cfg.runs and cfg.code != _code_today(exp, cfg.code):
        command += (f" (note: these runs ran code version {cfg.code_label} and the code has changed since, so new runs "
                    f"make a new configuration; to repeat the recorded version: assay rerun {cfg.runs[-1].id})")
    return command


def _code_today(exp: Experiment, recorded: str) -> str | None:
    """Today's code version of `exp`, in the form of `recorded` (a fingerprint, or git:commit+patch for old runs)."""
    import tempfile
    from pathlib import Path

    from assay.provenance import code_version, git_state

    with tempfile.TemporaryDirectory() as tmp:
        git = git_state(exp.path, Path(tmp) / "p")
        if recorded.startswith("git:"):
            return None if git is None else identity.code_fingerprint({"git": git})
        fingerprint: str = code_version(exp.path, exp.code_paths, git)["fingerprint"]
        return fingerprint


def _matches(r: RunView, where: dict[str, Any] | None) -> bool:
    if not where:
        return True
    params = r.record.get("params") or {}
    return all(str(params.get(k)) == str(v) or params.get(k) == v for k, v in where.items())


def _excluded(exp: Experiment, runs: list[RunView]) -> list[dict[str, Any]]:
    """Runs left out, each with why: ignored (with the reason from IGNORED_RUNS.md) or not ok."""
    out = []
    for r in runs:
        if r.ignored is not None:
            out.append({"id": r.id, "status": r.status, "why": f"ignored: {r.ignored}", "source": "IGNORED_RUNS.md"})
        elif r.status != "ok":
            out.append({"id": r.id, "status": r.status, "why": str(r.record.get("reason") or r.status),
                        "source": rel(r.path / "run.json", exp.path)})
    return out
