from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.lab import find_lab, init_lab


def test_init_is_idempotent_and_keeps_agents_md(tmp_path: Path):
    (tmp_path / "AGENTS.md").write_text("# House rules\n\nBe nice.\n")
    lab, written = init_lab(tmp_path)
    assert set(written) == {"assay.toml", "AGENTS.md", "experiments/.gitignore"}
    text = (tmp_path / "AGENTS.md").read_text()
    assert text.startswith("# House rules") and text.count("assay:begin") == 1
    _, again = init_lab(tmp_path)
    assert again == [] and (tmp_path / "AGENTS.md").read_text() == text
    assert lab.index_path.exists()


def test_lab_is_found_from_a_subfolder(tmp_path: Path):
    init_lab(tmp_path)
    sub = tmp_path / "experiments" / "x" / "deep"
    sub.mkdir(parents=True)
    assert find_lab(sub).root == tmp_path.resolve()


def test_pyproject_tool_assay_makes_a_lab(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.assay]\nexperiments_dir = "exps"\n')
    lab, written = init_lab(tmp_path)
    assert "assay.toml" not in written and not (tmp_path / "assay.toml").exists()
    assert lab.experiments_dir == tmp_path.resolve() / "exps"


def test_no_lab_says_to_init(tmp_path: Path):
    with pytest.raises(ConfigError, match="assay init"):
        find_lab(tmp_path)
