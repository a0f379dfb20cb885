"""`assay runs --limit 0` renders in time linear in the rows (it once compared every row with every other:
113 s for 10,000 runs). Counted, not timed: the number of cell formattings must grow with rows x params."""

from __future__ import annotations

from assay.cli import render


def _rows(n: int, params: int) -> list[dict]:
    return [{"params": {"seed": i, **{f"p{j}": (i * (j + 1)) % 7 for j in range(params)}}} for i in range(n)]


def test_choosing_the_varying_columns_formats_each_cell_once(monkeypatch):
    calls = 0
    real = render.fmt

    def counting(v: object) -> str:
        nonlocal calls
        calls += 1
        return real(v)

    monkeypatch.setattr(render, "fmt", counting)
    rows = _rows(2000, 5)
    render.varying_params(rows)
    assert calls <= 2000 * 6 + 6  # one per cell (and one per key some rows lack); quadratic was 2000 x 2000 x 6


def test_the_varying_columns_are_those_whose_shown_value_differs():
    rows = [{"params": {"seed": 1, "lr": 0.1, "same": 1, "some": 2}},
            {"params": {"seed": 2, "lr": 0.2, "same": 1}},
            {"params": {"seed": 3, "lr": 0.1, "same": 1.0000001}}]
    # 'some' is missing from two rows (shown as '-'), 'same' differs only past 4 digits, seed is never shown
    assert render.varying_params(rows) == ["lr", "some"]
    assert render.varying_params([{"params": {"a": 1, "b": 2}}]) == []
    assert render.varying_params(_rows(10, 9), limit=6) == [f"p{j}" for j in range(6)]
