"""One measured figure, its target and the runs it is the median of."""

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Figure:
    case: str
    name: str
    value: float
    unit: str
    target: str = ""  # e.g. "< 2 s"; empty: informational
    passed: bool | None = None
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")

    def shown(self) -> str:
        if self.value >= 100:
            return f"{self.value:,.0f} {self.unit}"
        return f"{self.value:.3g} {self.unit}"


def median_figure(
    case: str,
    name: str,
    runs: Sequence[float],
    unit: str,
    target: str = "",
    check: Callable[[float], bool] | None = None,
    note: str = "",
) -> Figure:
    """The median of `runs`, checked against its target by `check`."""
    value = statistics.median(runs)
    return Figure(
        case=case,
        name=name,
        value=value,
        unit=unit,
        target=target,
        passed=None if check is None else check(value),
        runs=list(runs),
        note=note,
    )
