"""The one exception type the library raises for bad input."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CapacityBlockError"]


class CapacityBlockError(ValueError):
    """Raised at synth time when input cannot produce a deployable template.

    The message lists every problem found, each with the offending value and
    the fix, so one synth shows everything that needs changing.

    :param problems: One sentence per problem.
    :param subject: What the problems are about: a construct path, a
        reservation ID or a field name. It leads the message.
    """

    def __init__(self, problems: str | Sequence[str], *, subject: str | None = None) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        self.subject = subject
        super().__init__(self._render())

    def _render(self) -> str:
        lead = f"{self.subject}: " if self.subject else ""
        if len(self.problems) == 1:
            return f"{lead}{self.problems[0]}"
        lines = [f"{lead}{len(self.problems)} problems:"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)
