"""assay check reads the syntax tree: real problems found at file:line, look-alikes in strings ignored."""

from __future__ import annotations

import textwrap
from pathlib import Path

from assay.checks.repro import check_file


def write(folder: Path, name: str, code: str) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(code).lstrip())
    return p


def codes(res) -> list[tuple[str, str]]:
    return [(f.code, f.where) for f in res.findings]


def test_unseeded_script_and_its_local_helper_module(tmp_path):
    write(tmp_path, "requirements.txt", "numpy==2.1.0\n")
    write(tmp_path, "helpers/data.py", """
        import numpy as np
        from sklearn.model_selection import train_test_split
        def split(x):
            idx = np.random.permutation(len(x))
            return train_test_split(x[idx], test_size=0.2)
        """)
    entry = write(tmp_path, "train.py", """
        import random
        from helpers.data import split
        # random.seed(0) in a comment does not count
        print("random.seed(0) in a string does not count either")
        x = [random.random() for _ in range(10)]
        """)
    res = check_file(entry)
    assert res.files == ["train.py", "helpers/data.py"]
    assert codes(res) == [("seed-numpy", "helpers/data.py:4"), ("seed-sklearn", "helpers/data.py:5"),
                          ("seed-random", "train.py:5")]
    f = res.findings[0]
    assert "global generator" in f.why and "default_rng(params['seed'])" in f.fix


def test_seeded_script_with_pinned_pep723_block_is_clean(tmp_path):
    entry = write(tmp_path, "train.py", """
        # /// script
        # dependencies = ["numpy==2.1.0", "scikit-learn==1.5.2"]
        # ///
        import random
        import numpy as np
        from sklearn.model_selection import KFold
        random.seed(1)
        np.random.seed(1)
        rng = np.random.default_rng(1)
        x = np.random.rand(3) + rng.random(3) + random.random()
        folds = KFold(5)
        """)
    assert check_file(entry).findings == []


def test_torch_without_seed_or_determinism_and_benchmark_mode(tmp_path):
    write(tmp_path, "requirements.txt", "torch==2.4.0\n")
    entry = write(tmp_path, "train.py", """
        import torch
        torch.backends.cudnn.benchmark = True
        model = torch.nn.Linear(2, 2)
        """)
    assert codes(check_file(entry)) == [("cudnn-determinism", "train.py:1"), ("seed-torch", "train.py:1"),
                                        ("cudnn-benchmark", "train.py:2")]
    entry.write_text("import torch\ntorch.manual_seed(0)\ntorch.backends.cudnn.deterministic = True\n")
    assert check_file(entry).findings == []


def test_unpinned_dependencies_and_missing_declaration(tmp_path):
    entry = write(tmp_path, "train.py", """
        # /// script
        # dependencies = [
        #   "numpy>=2",
        #   "pandas==2.2.3",
        # ]
        # ///
        import numpy
        """)
    assert codes(check_file(entry)) == [("unpinned-dependency", "train.py:3")]
    bare = write(tmp_path / "b", "train.py", "print(1)\n")
    assert codes(check_file(bare)) == [("no-dependencies", "train.py:1")]
    write(tmp_path / "b", "requirements.txt", "# tools\nrequests\nnumpy==2.1.0\n")
    assert codes(check_file(bare)) == [("unpinned-dependency", "requirements.txt:2")]
    write(tmp_path / "b", "uv.lock", "version = 1\n")
    assert check_file(bare).findings == []


def test_absolute_paths_and_outputs_that_overwrite_previous_runs(tmp_path):
    write(tmp_path, "requirements.txt", "pandas==2.2.3\n")
    entry = write(tmp_path, "train.py", """
        \"\"\"Reads /home/alice/data.csv (a docstring is not code).\"\"\"
        import os
        from pathlib import Path
        import pandas as pd
        df = pd.read_csv("/home/alice/data.csv")
        cache = os.path.expanduser("~/cache")
        df.to_csv("results.csv")
        with open(Path("out") / "preds.txt", "w") as fh:
            fh.write("x")
        run_dir = Path(os.environ["ASSAY_RUN_DIR"])
        df.to_csv(run_dir / "per_run.csv")
        with open("data/input.txt") as fh:
            pass
        """)
    res = check_file(entry)
    assert codes(res) == [("absolute-path", "train.py:5"), ("user-path", "train.py:6"), ("fixed-output", "train.py:7"),
                          ("fixed-output", "train.py:8")]
    assert "out/preds.txt" in res.findings[3].message and "ASSAY_RUN_DIR" in res.findings[3].fix


def test_a_notebook_is_checked_cell_by_cell_and_magics_are_not_python(tmp_path):
    import json

    import pytest

    from assay.errors import ConfigError

    write(tmp_path, "requirements.txt", "numpy==2.1.0\n")
    cells = [
        {"cell_type": "markdown", "source": ["# Training\n", "np.random.rand() in prose does not count\n"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "!pip install numpy\n", "import numpy as np\n"]},
        {"cell_type": "code", "source": "x = np.random.rand(3)\ndf = open('/home/alice/data.csv')\n"},
    ]
    nb = tmp_path / "explore.ipynb"
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    res = check_file(nb)
    assert res.files == ["explore.ipynb"]
    assert codes(res) == [("seed-numpy", "explore.ipynb cell 3:1"), ("absolute-path", "explore.ipynb cell 3:2")]

    cells[2]["source"] = "x = (\n"
    nb.write_text(json.dumps({"cells": cells, "nbformat": 4}))
    with pytest.raises(ConfigError, match="explore.ipynb cell 3"):
        check_file(nb)
