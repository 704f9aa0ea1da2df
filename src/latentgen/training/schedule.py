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


def edit_base_epoch(checkpoint_epochs: list[int], edit_epoch: int) -> int:
    """The checkpoint of a standard run that its VeLPIC edit at ``edit_epoch`` (E) is made on.

    Its checkpoint at E when the run trained that far (the config adds E to the schedule). A run that stopped
    before E (its ``stop_accuracy`` reached at epoch F < E) is a fixed model from F on, and is counted so in the
    seed means: its model at E is its final checkpoint, so the edit is made on that one (the edited run still
    starts at E and trains to ``until``). The authors did the same where their run had stopped short
    (``training_using_VeLPIC/MASC/angle_retrain.py``, ``peak_info_cnnnetwork``: CNN-MNIST at 0 %, run 3,
    edited "at 40" from ``model_38.pth``, its last checkpoint). A run that passed E without a checkpoint there
    (trained before E was in its schedule) is an error: ValueError.
    """
    epochs = sorted(int(epoch) for epoch in checkpoint_epochs)
    if edit_epoch in epochs:
        return edit_epoch
    if epochs and epochs[-1] < edit_epoch:
        return epochs[-1]
    raise ValueError(
        f"the run passed edit epoch {edit_epoch} without a checkpoint there (its checkpoints: "
        f"{epochs}); retrain it with {edit_epoch} in its checkpoint schedule"
    )
