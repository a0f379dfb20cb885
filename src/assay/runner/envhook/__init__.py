"""A folder put first on PYTHONPATH of env-style runs; it holds only the read hook (sitecustomize.py)."""
