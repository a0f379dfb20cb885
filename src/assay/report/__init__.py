"""Evidence from runs: verdicts on the hypothesis, plots drawn only from logged data, the report."""
