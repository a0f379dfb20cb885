"""The brief a proposer reads each iteration (`assay loop prompt`): bounded, plain text."""

from __future__ import annotations

from assay.experiment import load_experiment
from assay.journal import read_journal
from assay.lab import Lab
from assay.loop import results
from assay.loop.state import LoopState

MAX_CHARS = 6000


def brief(lab: Lab, st: LoopState, last: int = 10) -> str:
    """Goal, files, best so far with its noise, the last results, open TODOs, the protocol."""
    exp = load_experiment(lab, st.experiment)
    rows = [r for r in results.read(exp.path / "results.tsv") if r.tag == st.tag]
    best = f"{results.show(results.commit_value(st.best_values))} over {len(st.best_values)} seeds" if st.best_values else "none yet"
    noise = f"{st.sigma:.3g} (from {st.sigma_df} degrees of freedom)" if st.sigma is not None else "not estimated"
    lines = [
        f"# Loop {st.tag} on experiment {st.experiment}",
        "",
        f"Goal: {'maximize' if exp.goal == 'max' else 'minimize'} {results.label(exp.metric, st.value)}. Hypothesis: {exp.hypothesis}",
        f"Best so far: {best} at commit {(st.best_commit or '-')[:8]}. Run-to-run noise (σ): {noise}.",
        f"Editable: {', '.join(st.editable)}. Protected (never edit): {', '.join(st.protected) or 'none'}.",
        f"Decision: {st.decision}; a keep must beat the best by more than {st.min_delta:g}"
        + (" with 95% confidence." if st.decision != "greedy" else "."),
        "",
        "## Protocol",
        "1. Make ONE focused change to the editable files (one hypothesis per try).",
        '2. Run `assay try "what you changed"`; read its one line: keep, discard or crash.',
        "3. On crash: read the log tail it names, fix, `assay try --retry \"fix ...\"`; or `assay loop drop TAG`.",
        "4. Never edit protected files, never stream logs, never reset git yourself.",
    ]
    if st.pending_crash:
        lines += ["", f"PENDING CRASH: '{st.pending_crash['description']}' is in the work tree. Fix it or drop it."]
    if rows:
        lines += ["", f"## Last {min(last, len(rows))} results (of {len(rows)})", "iter\tstatus\tmetric\tdelta\tdescription\treason"]
        lines += [f"{r.iteration}\t{r.status}\t{results.show(r.value) or '-'}\t{r.delta}\t{r.description[:60]}\t{r.reason[:100]}"
                  for r in rows[-last:]]
    todos = read_journal(exp.path, "TODO")
    if todos:
        lines += ["", "## Open TODOs from the journal"] + [f"- {t.text[:160]}" for t in todos[-8:]]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 20] + "\n[... truncated]\n"
