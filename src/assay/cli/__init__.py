"""The `assay` command: thin Typer commands over the Python API."""
