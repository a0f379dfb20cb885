"""Notes which ASSAY_PARAM* variables (and ASSAY_SEED) a run's Python processes read, so that assay can tell a param
that never reached the script (a silent no-op sweep) from one that did.

Python imports this at start when `assay run` puts its folder first on PYTHONPATH (env and
template styles). It turns `os.environ` into a subclass that appends `read VAR` to the run's
params_env_read.txt on the first read of each ASSAY_PARAM* variable (reads made by assay's own
API are left out: that API keeps its own record), then hands over to any other sitecustomize.
Kept to the standard library and a few microseconds of start-up.
"""

import os
import sys
from types import FrameType  # already loaded by site: free


def _install() -> None:
    run_dir = os.environ.get("ASSAY_RUN_DIR")
    if not run_dir:
        return
    path = os.path.join(run_dir, "params_env_read.txt")
    seen: set[str] = set()
    bulk = [0]

    def note(line: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)
        except OSError:  # a read-only or full run folder: the check then claims nothing
            pass

    def from_assay_api() -> bool:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") in ("os", "_collections_abc", "collections.abc"):
            frame = frame.f_back
        return frame is not None and frame.f_globals.get("__name__") == "assay.tracking"

    base = type(os.environ)

    class _Watched(base):  # type: ignore[valid-type,misc]
        def __getitem__(self, key: str) -> str:
            value = base.__getitem__(self, key)
            if (not bulk[0] and isinstance(key, str) and (key.startswith("ASSAY_PARAM") or key == "ASSAY_SEED")
                    and key not in seen and not from_assay_api()):
                seen.add(key)
                note("read " + key)
            return value

        def copy(self) -> dict[str, str]:  # a copy for a subprocess is not a read
            bulk[0] += 1
            try:
                return base.copy(self)
            finally:
                bulk[0] -= 1

    os.environ.__class__ = _Watched
    note("loaded")


def _chain() -> None:
    """Import the sitecustomize this one shadows, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    ours = sys.modules.pop("sitecustomize")
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401 - the one this shadows, if any (none here)
    except ImportError:
        pass
    finally:
        sys.modules["sitecustomize"] = ours  # the import of this module expects to find it there


_install()
_chain()
