"""Static checks: reproducibility hygiene of an experiment's code (AST), and leakage between data splits."""
