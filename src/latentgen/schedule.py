"""The checkpoint schedule of a run, without torch: the workflow reads it when it is parsed (latentgen.config
adds an edited run's start epoch to its base run's schedule), and every cluster job parses the workflow again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """Checkpoint epochs: 0, every ``early_every`` up to ``early_until``, then every ``late_every``,
    plus ``extra_epochs`` (the authors' ``select_model`` also probes epoch 1)."""

    early_every: int = 2
    early_until: int = 20
    late_every: int = 5
    extra_epochs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_epochs", tuple(sorted(int(e) for e in self.extra_epochs)))

    def is_checkpoint(self, epoch: int) -> bool:
        if epoch in self.extra_epochs:
            return True
        if epoch <= self.early_until:
            return epoch % self.early_every == 0
        return (epoch - self.early_until) % self.late_every == 0
