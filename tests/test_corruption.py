import numpy as np
import pytest

from latentgen.corruption import corrupt_labels

LABELS = np.random.default_rng(1).integers(0, 10, size=50_000)


def test_rate_zero_is_identity():
    noisy, mask = corrupt_labels(LABELS, 0.0, 10, seed=3)
    assert np.array_equal(noisy, LABELS)
    assert not mask.any()


def test_rate_one_redraws_everything_uniformly():
    noisy, mask = corrupt_labels(LABELS, 1.0, 10, seed=3)
    assert mask.all()
    counts = np.bincount(noisy, minlength=10) / noisy.size
    assert np.allclose(counts, 0.1, atol=0.01)
    # uniform over all classes, so about 1/K keep their label
    assert abs((noisy == LABELS).mean() - 0.1) < 0.01


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6, 0.8])
def test_fraction_changed_matches_rate(rate):
    noisy, mask = corrupt_labels(LABELS, rate, 10, seed=0)
    assert abs(mask.mean() - rate) < 0.01
    assert abs((noisy != LABELS).mean() - rate * (1 - 1 / 10)) < 0.01


def test_nested_across_rates_and_same_replacement():
    masks, noisy = {}, {}
    for rate in (0.2, 0.4, 0.6, 0.8, 1.0):
        noisy[rate], masks[rate] = corrupt_labels(LABELS, rate, 10, seed=7)
    rates = sorted(masks)
    for low, high in zip(rates, rates[1:]):
        assert np.all(masks[high][masks[low]]), f"{low} not nested in {high}"
        both = masks[low]
        assert np.array_equal(noisy[low][both], noisy[high][both])


def test_deterministic_and_pure():
    copy = LABELS.copy()
    a = corrupt_labels(LABELS, 0.4, 10, seed=5)
    b = corrupt_labels(LABELS, 0.4, 10, seed=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(LABELS, copy)
    c = corrupt_labels(LABELS, 0.4, 10, seed=6)
    assert not np.array_equal(a[1], c[1])


def test_invalid_input_is_refused():
    with pytest.raises(ValueError, match="rate"):
        corrupt_labels(LABELS, 1.5, 10, 0)
    with pytest.raises(ValueError, match="0..9"):
        corrupt_labels(np.array([0, 10]), 0.5, 10, 0)

