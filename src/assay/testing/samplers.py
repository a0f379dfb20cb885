"""The sampler conformance suite: what the sweep driver relies on from every `Sampler`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assay.sweep.samplers import Sampler, TrialResult
from assay.sweep.space import Choice, SearchSpace, space_from_args

SamplerFactory = Callable[..., Sampler]  # factory(space, goal, seed, **options), as `assay.samplers` entry points


def default_space() -> SearchSpace:
    """A log range, a choice and an integer range: the dimensions every sampler must handle."""
    return space_from_args(["lr=log(1e-4,1e-1)", "batch=16,32,64", "layers=range(1,4)"])


def grid_space() -> SearchSpace:
    """A finite space (12 points) for samplers that enumerate."""
    return space_from_args(["lr=1e-4,1e-3", "batch=16,32,64", "layers=range(1,3)"])


def check_sampler(factory: SamplerFactory, *, space: SearchSpace | None = None, asks: int = 6,
                  exhausts: bool = False, deterministic: bool = True) -> None:
    """Check a sampler factory against the `Sampler` protocol.

    Args:
        factory: called as factory(space, goal, seed), as the sweep driver and `assay.samplers`
            entry points call it.
        space: the space to sample (default_space(); grid_space() when `exhausts`).
        asks: points to ask for, several pending at once.
        exhausts: the sampler enumerates a finite space: it must propose each point once, then None.
        deterministic: two samplers made with the same seed must propose the same points.

    Raises:
        AssertionError: the first broken promise, with the offending value.
    """
    space = space or (grid_space() if exhausts else default_space())
    sampler = factory(space, "min", 1)
    _check(isinstance(sampler, Sampler), f"{sampler!r} has no ask()/tell(): not a Sampler")
    # Stored history it never proposed (a resumed sweep), a failure and a point outside today's space.
    sampler.tell(_first_point(space), TrialResult("ok", 0.5, "x/1"))
    sampler.tell(_first_point(space), TrialResult("failed", None, "x/2"))
    sampler.tell({k: "outside" for k in space.dims}, TrialResult("ok", 0.1, "x/3"))
    pending = [sampler.ask() for _ in range(asks)]
    for i, point in enumerate(pending):
        _check(point is not None or exhausts, f"ask() #{i + 1} returned None from a sampler that is not exhaustible")
        if point is not None:
            check_inside(space, point)
            sampler.tell(point, TrialResult("ok" if i % 3 else "oom", float(i) if i % 3 else None, None))
    if exhausts:
        _check_exhausts(factory, space)
    if deterministic:
        first, second = factory(space, "min", 7), factory(space, "min", 7)
        a = [first.ask() for _ in range(asks)]
        b = [second.ask() for _ in range(asks)]
        _check(a == b, f"the same seed proposed different points: {a} then {b}")


def check_inside(space: SearchSpace, point: dict[str, Any]) -> None:
    """`point` sets exactly the space's dimensions, each within its bounds or choices."""
    _check(set(point) == set(space.dims), f"point {point} does not set exactly the dimensions {sorted(space.dims)}")
    for key, dim in space.dims.items():
        value = point[key]
        if isinstance(dim, Choice):
            _check(value in dim.values, f"{key}={value!r} is not one of the choices {dim.values}")
        else:
            _check(isinstance(value, int | float) and not isinstance(value, bool) and dim.low <= value <= dim.high,
                   f"{key}={value!r} is outside [{dim.low}, {dim.high}]")
            _check(not dim.integer or isinstance(value, int), f"{key}={value!r} is not an integer")


def _check_exhausts(factory: SamplerFactory, space: SearchSpace) -> None:
    size = space.size()
    _check(size is not None, "an exhaustible sampler needs a finite space")
    assert size is not None
    sampler = factory(space, "min", 0)
    seen: list[dict[str, Any]] = []
    for _ in range(size + 1):
        point = sampler.ask()
        if point is None:
            break
        check_inside(space, point)
        seen.append(point)
        sampler.tell(point, TrialResult("ok", 1.0, None))
    keys = {_key(p) for p in seen}
    _check(len(seen) == len(keys) == size, f"proposed {len(seen)} points ({len(keys)} distinct) of a {size}-point grid")
    _check(sampler.ask() is None, "ask() after the last point of the grid did not return None")


def _first_point(space: SearchSpace) -> dict[str, Any]:
    return space.example()


def _key(point: dict[str, Any]) -> str:
    return repr(sorted(point.items()))


def _check(ok: bool, message: str) -> None:
    if not ok:  # not `assert`: the checks must hold under python -O too
        raise AssertionError(message)
