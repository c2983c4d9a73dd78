"""The time budget of a training run (`train.max_minutes`).

After each epoch from the second on, if the epochs left at the pace measured since the first (which
also fills the frame cache, so it is slower) would overrun the budget, the run is shortened to the
epochs that fit and the cosine schedule decays over those, so a slower machine still ends on an
annealed learning rate. A run that overruns anyway stops mid-epoch; under torchrun every process stops
at the same step (`Distributed.any`), when any one's clock passes the budget.

Times are seconds of the caller's clock (`time.monotonic()` in train.py); nothing here reads a clock.
"""

from __future__ import annotations


def fit_epochs(planned: int, done: int, elapsed_s: float, epoch_s: float, budget_s: float) -> int:
    """The epochs a run can finish within `budget_s` seconds: `planned`, or fewer when `done` epochs took
    `elapsed_s` and the other ones, at `epoch_s` each, would overrun it; never fewer than `done`.
    A budget of 0 is no budget."""
    if budget_s <= 0 or done >= planned or elapsed_s + (planned - done) * epoch_s <= budget_s:
        return planned
    return done + max(0, int((budget_s - elapsed_s) // epoch_s))


class Budget:
    """One process's budget: `minutes` (0: none) from `started`, and the pace of its epochs."""

    def __init__(self, minutes: float, started: float):
        self.minutes = minutes
        self.seconds = minutes * 60
        self.started = started
        self._first: tuple[int, float] | None = None  # (epoch, end time) of the first epoch this process ran

    @property
    def on(self) -> bool:
        return self.seconds > 0

    def spent(self, now: float) -> bool:
        """Whether the budget is used up at `now` (never, without a budget)."""
        return self.on and now - self.started > self.seconds

    def fit(self, planned: int, epoch: int, now: float) -> int:
        """The epochs the run can train after epoch `epoch` (0-based) ended at `now`: `planned` until a
        pace is known (the first epoch only sets the mark it is measured from), then `fit_epochs`."""
        if self._first is None:
            self._first = (epoch, now)
            return planned
        first_epoch, first_end = self._first
        return fit_epochs(planned, epoch + 1, now - self.started, (now - first_end) / (epoch - first_epoch),
                          self.seconds)
