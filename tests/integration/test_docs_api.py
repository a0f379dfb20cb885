"""docs/api.md's examples run as written (doctest): they make a lab, run a tiny script and read the results."""

from __future__ import annotations

import doctest
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_examples_of_docs_api_md_run_and_print_what_the_page_shows(tmp_path, monkeypatch):
    monkeypatch.delenv("ASSAY_LAB", raising=False)  # the page's own lab, not one from the environment
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # its tempfile.mkdtemp() lab lands here and is cleaned up
    monkeypatch.chdir(tmp_path)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} example(s) of {DOC.name} failed (the diff is printed above)"
