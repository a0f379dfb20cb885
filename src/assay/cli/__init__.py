"""assay's command line: Typer commands that parse, call one function of assay.api (or assay.loop)
and render its result.

These modules do not use `from __future__ import annotations`: Typer reads every command's
annotations to build the app, and string annotations cost an eval() each (about 50 ms of
`assay --help` for ~40 commands). Names imported only for type checkers are quoted instead.
"""
