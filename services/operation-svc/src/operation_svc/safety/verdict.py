from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)  # exceptions must stay mutable (Python sets __traceback__)
class Refusal(Exception):
    """Why a template or a value was refused; ``rule`` names the check that refused it,
    ``at`` the part of the template it found at fault (``url``, ``headers.<name>``)."""

    rule: str
    message: str
    parameter: str | None = None
    at: str | None = None

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {"rule": self.rule, "message": self.message, "parameter": self.parameter}
