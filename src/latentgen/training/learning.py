"""Has a run learned anything? The check the trainer logs and the claims table reports."""

from __future__ import annotations

import math


# A network that learns nothing predicts uniformly: its cross-entropy is ln K. Epoch 3 is past the first
# steps of every configured optimizer; a run still within 1 % of ln K there has not started to fit.
LEARNING_CHECK_EPOCH = 3


LEARNING_TOLERANCE = 0.01


# Above this multiple of chance (1/K) on the clean training labels a network has learned something.
LEARNED_ACCURACY_OVER_CHANCE = 1.5


def has_learned(train_loss: float, num_classes: int, true_accuracy: float | None = None) -> bool:
    """A training loss more than 1 % below ln K (the loss of a uniform guess), or an accuracy on the clean
    training labels clearly above chance (the job log warns otherwise; the claims table flags the run).

    The loss alone would flag healthy runs at high corruption: at 80 % on 10 classes even a perfect
    classifier of the true classes has a loss of 2.175 on the corrupted labels, only 5.5 % below ln 10,
    and a learning network is still within 1 % of ln K after 3 epochs.  A dead network predicts (nearly)
    one class, so its clean accuracy stays near 1/K.
    """
    if train_loss < (1.0 - LEARNING_TOLERANCE) * math.log(num_classes):
        return True
    return true_accuracy is not None and true_accuracy > LEARNED_ACCURACY_OVER_CHANCE / num_classes
