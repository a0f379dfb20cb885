"""Decision quality of the loop: greedy (autoresearch) vs noise-aware vs sequential, at equal run budgets.

A synthetic objective with a known true value plus Gaussian noise (sigma = 1, lower is better).
Each candidate changes the true value by a drawn effect; the decision only sees noisy runs.
Reported per scenario: false-keep rate (keeps of candidates that are truly no better), true
improvements kept, runs per try (a keep's re-measurement on fresh seeds included), power (share
of truly better candidates kept) and the final true value of the incumbent (the lower, the better).

The cost of honesty, the goal for the sequential rule: at most 2.0 runs per try on pure noise
with at most 5% false keeps, and power on true 1-sigma improvements no lower than noise-aware's.

    python benchmarks/bench_loop_decisions.py [--sims 300] [--budget 120]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from assay.loop.decisions import Evidence, Settings, make_decision, pooled_sigma  # noqa: E402

SCENARIOS = {
    # name: draw of a candidate's true effect (negative = lower = better)
    "pure noise (no idea works)": lambda r: 0.0,
    "mostly bad ideas, a few good": lambda r: r.gauss(0.3, 0.5),
    "small real gains (0.5 sigma)": lambda r: -0.5 if r.random() < 0.3 else 0.0,
    "gains and harms of 2 sigma": lambda r: r.choice((-2.0, 0.0, 0.0, 2.0, 2.0)),
    "true 1 sigma gains (30%)": lambda r: -1.0 if r.random() < 0.3 else 0.0,
}
RULES = ("greedy", "noise-aware", "sequential")


def simulate(rule: str, effect, budget: int, seed: int, sigma: float = 1.0) -> dict[str, float]:
    r = random.Random(seed)
    settings = Settings(min_delta=0.0, confidence=0.95, max_repeats=4)
    decider = make_decision(rule, settings)
    truth = 0.0
    k = 1 if rule == "greedy" else 3
    incumbent = [truth + r.gauss(0, sigma) for _ in range(k)]
    baseline_seen = statistics.fmean(incumbent)
    groups = [incumbent] if k > 1 else []
    used = k
    spent = 0
    false_keeps = null_candidates = good_keeps = tries = 0
    while used < budget:
        start_used = used
        cand_truth = truth + effect(r)
        sig, df = pooled_sigma(groups)
        values: list[float] = []
        while used < budget:
            values.append(cand_truth + r.gauss(0, sigma))
            used += 1
            v = decider.decide(Evidence("min", incumbent, values, sig, df))
            if v.decision != "more":
                break
        else:
            break
        tries += 1
        if len(values) > 1:
            groups.append(values)
        no_better = cand_truth >= truth
        null_candidates += no_better
        if v.decision == "keep":
            false_keeps += no_better
            good_keeps += not no_better
            truth, incumbent = cand_truth, values
            if rule != "greedy":  # as the loop does: re-measure the new best on k fresh seeds
                incumbent = [truth + r.gauss(0, sigma) for _ in range(k)]
                used += k
                groups.append(incumbent)
        spent += used - start_used
    good = tries - null_candidates
    return {"false_keep_rate": false_keeps / null_candidates if null_candidates else 0.0,
            "good_keeps": good_keeps, "final_truth": truth, "any_false_keep": float(false_keeps > 0),
            "claimed": statistics.fmean(incumbent) - baseline_seen, "runs_per_try": spent / tries if tries else 0.0,
            "good": good}


def first_decision_false_keep(rule: str, trials: int, seed: int = 0, sigma: float = 1.0) -> float:
    """P(keep) for a candidate identical to a fresh baseline: the rate the issue quotes (~50% greedy)."""
    r = random.Random(seed)
    decider = make_decision(rule, Settings(min_delta=0.0, confidence=0.95, max_repeats=4))
    k = 1 if rule == "greedy" else 3
    keeps = 0
    for _ in range(trials):
        incumbent = [r.gauss(0, sigma) for _ in range(k)]
        sig, df = pooled_sigma([incumbent])
        values: list[float] = []
        while True:
            values.append(r.gauss(0, sigma))
            v = decider.decide(Evidence("min", incumbent, values, sig, df))
            if v.decision != "more":
                break
        keeps += v.decision == "keep"
    return keeps / trials


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=300)
    ap.add_argument("--budget", type=int, default=120, help="runs per loop (baseline included)")
    args = ap.parse_args()
    print(f"{args.sims} simulated loops per cell, {args.budget} runs each, noise sigma = 1, lower is better\n")
    print(f"{'scenario':<30} {'rule':<12} {'false keeps':>12} {'loops w/ one':>13} {'true gains kept':>16} {'runs/try':>9} "
          f"{'power':>6} {'true change':>12} {'claimed change':>15}")
    table: dict[tuple[str, str], dict[str, float]] = {}
    for name, effect in SCENARIOS.items():
        for rule in RULES:
            res = [simulate(rule, effect, args.budget, s) for s in range(args.sims)]
            row = {key: statistics.fmean(x[key] for x in res) for key in res[0]}
            row["power"] = row["good_keeps"] / row["good"] if row["good"] else 0.0  # pooled over the loops
            table[name, rule] = row
            power = f"{row['power']:>6.0%}" if name != "pure noise (no idea works)" else f"{'-':>6}"
            print(f"{name:<30} {rule:<12} {row['false_keep_rate']:>11.1%} {row['any_false_keep']:>12.0%} {row['good_keeps']:>16.2f} "
                  f"{row['runs_per_try']:>9.2f} {power} {row['final_truth']:>+12.3f} {row['claimed']:>+15.3f}")
    noise, gains = table["pure noise (no idea works)", "sequential"], "true 1 sigma gains (30%)"
    met = (noise["runs_per_try"] <= 2.0 and noise["false_keep_rate"] <= 0.05
           and table[gains, "sequential"]["power"] >= table[gains, "noise-aware"]["power"])
    print(f"\ncost of honesty (sequential): {noise['runs_per_try']:.2f} runs per try on pure noise (goal <= 2.0), "
          f"{noise['false_keep_rate']:.1%} false keeps (goal <= 5%), power on 1 sigma gains {table[gains, 'sequential']['power']:.0%} "
          f"vs noise-aware {table[gains, 'noise-aware']['power']:.0%}: {'goal met' if met else 'goal NOT met'}")
    print("\nfirst decision on a no-op candidate against a fresh baseline (greedy: 1 baseline run; the others: 3):")
    for rule in RULES:
        print(f"  {rule:<12} kept {first_decision_false_keep(rule, 20 * args.sims):.1%}")
    print("\nfalse keeps: kept candidates whose true value was no better, over all such candidates tried;")
    print("loops w/ one: share of loops that kept at least one such candidate.")
    print("true change: the final incumbent's true value minus the baseline's (negative is better).")
    print("claimed change: what the loop measured for the same (its belief); far from the truth = chasing noise.")


if __name__ == "__main__":
    main()
