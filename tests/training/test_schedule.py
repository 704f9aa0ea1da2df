"""latentgen.training.schedule: which epochs get a checkpoint, and which checkpoint an edit is made on."""

import pytest

from latentgen.training.schedule import Schedule, edit_base_epoch


def test_checkpoint_epochs_early_late_and_extra():
    schedule = Schedule(early_every=2, early_until=6, late_every=5, extra_epochs=(9, 1))
    assert [epoch for epoch in range(20) if schedule.is_checkpoint(epoch)] == [0, 1, 2, 4, 6, 9, 11, 16]
    assert schedule.extra_epochs == (1, 9)
    assert Schedule(extra_epochs=[3, 1]) == Schedule(extra_epochs=(1, 3)), "extra epochs are kept sorted"


def test_edit_base_epoch():
    assert edit_base_epoch([0, 2, 4, 40, 45], 40) == 40
    assert edit_base_epoch([4, 0, 2], 40) == 4, "a run that stopped before E: its final checkpoint"
    with pytest.raises(ValueError, match="passed edit epoch 40 without a checkpoint"):
        edit_base_epoch([0, 35, 45], 40)
    with pytest.raises(ValueError):
        edit_base_epoch([], 40)
