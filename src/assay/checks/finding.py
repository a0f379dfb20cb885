"""A finding of a check: where, what, why it matters, and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    code: str
    file: str
    line: int
    message: str
    why: str
    fix: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file  # 0: about the whole file

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "where": self.where}
