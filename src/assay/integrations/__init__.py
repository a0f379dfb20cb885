"""Bridges to the wider ecosystem: notebooks (Jupyter, marimo), MLflow export, an MCP server.

Each module imports its heavy library inside the functions that use it, so importing one of
these modules costs nothing until it is used.
"""
