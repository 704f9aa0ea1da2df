"""What the label-issue stage flags, chosen from a run's score table without the truth mask.

* **Checkpoints** (``checkpoints_to_flag``): the model's peak and its final checkpoint (``peak_and_final``), or
  every checkpoint (``all``).  The peak is the epoch where the network's own accuracy on the held-out slice of
  corrupted labels is highest (score rows ``probe == "model"``, ``split == "holdout_corrupted"``): no test
  label and no true training label is read.  A run scored without a held-out slice has no such rows; its peak
  is then the epoch of the highest *test* accuracy, an oracle, and every output says so (``peak_chosen_on``):
  such a peak describes the run, it cannot be used to pick a model.
* **The probe and layer a user would trust** (``truth_free_choice``): at each checkpoint, the layer of the held-out
  choice (score rows ``probe == "selected"``, whose ``layer`` names ``probe:layer``), with that probe when it is
  one of the stage's probes and the first of the stage's probes otherwise; without a held-out choice, the last
  flagged layer (the one feeding the network's head).  The rule that decided is returned as text.

Pure pandas on the score table's columns (``epoch``, ``layer``, ``probe``, ``split``, ``accuracy``), with the
score stage's names for the held-out choice (``latentgen.scoring.selection``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from latentgen.scoring.selection import RANKING_SPLIT, SELECTED, parse_choice

MODEL_PROBE = "model"
HOLDOUT_SPLIT = RANKING_SPLIT  # the network's accuracy on the held-out slice's corrupted labels
TEST_SPLIT = "test"
CHECKPOINT_MODES = ("peak_and_final", "all")
PEAK_ON_HOLDOUT = "holdout_corrupted (the network's accuracy on the held-out slice of corrupted labels)"
PEAK_ON_TEST = "test (an ORACLE peak, descriptive only: this run has no held-out slice)"


@dataclass(frozen=True)
class CheckpointPlan:
    """The epochs to flag, each with its role ("peak", "final", "peak+final" or "checkpoint"), and what the
    peak was chosen on (``PEAK_ON_HOLDOUT`` or ``PEAK_ON_TEST``)."""

    roles: dict[int, str]
    peak_epoch: int
    final_epoch: int
    peak_chosen_on: str

    @property
    def epochs(self) -> list[int]:
        return sorted(self.roles)


def model_accuracy_by_epoch(scores: pd.DataFrame, split: str) -> pd.Series:
    """The network's accuracy on ``split`` per epoch (index sorted), empty when the table has no such rows."""
    rows = scores[(scores["probe"] == MODEL_PROBE) & (scores["split"] == split)]
    return rows.groupby("epoch")["accuracy"].mean().sort_index()


def model_peak(scores: pd.DataFrame, checkpoint_epochs: list[int]) -> tuple[int, str]:
    """(epoch of the network's peak among ``checkpoint_epochs``, what it was chosen on); the earliest epoch wins
    a tie.  ValueError when the scores have neither held-out nor test rows of the model at those epochs."""
    for split, chosen_on in ((HOLDOUT_SPLIT, PEAK_ON_HOLDOUT), (TEST_SPLIT, PEAK_ON_TEST)):
        curve = model_accuracy_by_epoch(scores, split)
        curve = curve[curve.index.isin(checkpoint_epochs)]
        if not curve.empty:
            return int(curve.idxmax()), chosen_on
    raise ValueError(
        f"the score table has no rows of the model on split {HOLDOUT_SPLIT!r} or {TEST_SPLIT!r} at the "
        f"checkpoints {sorted(checkpoint_epochs)}: is it this run's?"
    )


def checkpoints_to_flag(scores: pd.DataFrame, checkpoint_epochs: list[int], mode: str) -> CheckpointPlan:
    """The checkpoints the stage flags (module docstring); ``mode`` is one of ``CHECKPOINT_MODES``."""
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"checkpoints must be one of {CHECKPOINT_MODES}, got {mode!r}")
    if not checkpoint_epochs:
        raise ValueError("the run has no checkpoints")
    final = max(checkpoint_epochs)
    peak, chosen_on = model_peak(scores, checkpoint_epochs)
    roles = {epoch: "checkpoint" for epoch in checkpoint_epochs} if mode == "all" else {}
    roles[peak] = "peak"
    roles[final] = "peak+final" if peak == final else "final"
    return CheckpointPlan(roles=roles, peak_epoch=peak, final_epoch=final, peak_chosen_on=chosen_on)


def _held_out_choice(scores: pd.DataFrame, epoch: int) -> tuple[str, str] | None:
    """(probe, layer) of the score table's held-out choice at ``epoch``, or None."""
    rows = scores[(scores["probe"] == SELECTED) & (scores["split"] == HOLDOUT_SPLIT) & (scores["epoch"] == epoch)]
    return None if rows.empty else parse_choice(str(rows["layer"].iloc[0]))


def truth_free_choice(scores: pd.DataFrame, epoch: int, layers: list[str], probes: list[str]) -> tuple[str, str, str]:
    """(probe, layer, the rule that chose them) among the stage's ``probes`` and ``layers`` at ``epoch``."""
    held_out = _held_out_choice(scores, epoch)
    if held_out is not None and held_out[1] in layers:
        chosen_probe, layer = held_out
        if chosen_probe in probes:
            return chosen_probe, layer, f"the held-out choice {chosen_probe}:{layer}"
        return probes[0], layer, f"the layer of the held-out choice {chosen_probe}:{layer}, with {probes[0]}"
    why = "no held-out choice" if held_out is None else f"the held-out choice {':'.join(held_out)} is not flagged"
    return probes[0], layers[-1], f"the last flagged layer {layers[-1]}, with {probes[0]} ({why})"
