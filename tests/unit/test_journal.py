import pytest

from assay.errors import ConfigError
from assay.journal import add_note, ignore_run, ignored_runs, read_journal


def test_notes_are_tagged_timestamped_and_read_back(tmp_path):
    (tmp_path / "JOURNAL.md").write_text("# Journal\n\nfree prose the user wrote\n")
    add_note(tmp_path, "[HUNCH] warmup matters", run="exp/r1")
    add_note(tmp_path, "[todo] try  wd=0.1")
    entries = read_journal(tmp_path)
    assert [(e.tag, e.text, e.run) for e in entries] == [("HUNCH", "warmup matters", "exp/r1"), ("TODO", "try wd=0.1", None)]
    assert [e.text for e in read_journal(tmp_path, "todo")] == ["try wd=0.1"]
    assert "free prose the user wrote" in (tmp_path / "JOURNAL.md").read_text()


def test_unknown_tag_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'HUNCH'"):
        add_note(tmp_path, "[HUNC] x")


def test_ignore_is_recorded_once(tmp_path):
    run = tmp_path / "runs" / "2026-01-01T00-00-00-x"
    run.mkdir(parents=True)
    ignore_run(run, "loader bug")
    ignore_run(run, "again")
    assert ignored_runs(tmp_path) == {run.name: ignored_runs(tmp_path)[run.name]}
    assert ignored_runs(tmp_path)[run.name].startswith("loader bug")
