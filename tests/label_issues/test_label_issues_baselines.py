"""Baselines on hand cases: deep k-NN, the network's disagreement and its own softmax."""

from __future__ import annotations

import numpy as np
import pytest

from latentgen.label_issues import deep_knn_issues, network_disagreement_issues, network_softmax_issues


def test_deep_knn_hand_case():
    # Two groups on a line; example 2 sits with the 0s but is labelled 1.  With k = 2 (itself excluded):
    # example 0's neighbours are 1 (label 0) and 2 (label 1): a tie that includes its label, kept, score 1/2;
    # example 1's are 0 and 2: the same; example 2's are 1 and 0, both label 0: flagged, score 0;
    # examples 3-5 have only label-1 neighbours: score 1.
    features = np.array([[0.0], [0.1], [0.25], [10.0], [10.1], [10.2]])
    labels = np.array([0, 0, 1, 1, 1, 1])
    table = deep_knn_issues(features, labels, None, layer="fc3", k=2)
    assert table["is_label_issue"].tolist() == [False, False, True, False, False, False]
    np.testing.assert_allclose(table["label_score"], [0.5, 0.5, 0.0, 1.0, 1.0, 1.0])
    assert table["predicted_label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert table["index"].tolist() == list(range(6)) and set(table["probe"]) == {"deep_knn"}


def test_deep_knn_refuses_more_neighbours_than_other_examples():
    with pytest.raises(ValueError, match="k must be"):
        deep_knn_issues(np.zeros((3, 2)), np.array([0, 1, 0]), None, layer="fc3", k=3)


LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
GIVEN = np.array([0, 1, 2, 2])


def test_network_disagreement_hand_case():
    table = network_disagreement_issues(LOGITS, GIVEN, [7, 8, 9, 10])
    assert table["is_label_issue"].tolist() == [False, False, False, True]
    assert table["predicted_label"].tolist() == [0, 1, 2, 0]
    e = np.e
    np.testing.assert_allclose(table["label_score"], [e**2 / (e**2 + 2), e**3 / (e**3 + 2), e / (e + 2), 1 / (e + 2)])
    assert table["index"].tolist() == [7, 8, 9, 10]


# Four examples are too few for cleanlab's per-class noise estimates; it says so, and that is not under test here.
@pytest.mark.filterwarnings("ignore:May not flag all label issues:UserWarning")
def test_network_softmax_ranks_by_the_probability_of_the_given_label():
    softmax = network_softmax_issues(LOGITS, GIVEN, None)
    disagreement = network_disagreement_issues(LOGITS, GIVEN, None)
    np.testing.assert_allclose(softmax["label_score"], disagreement["label_score"])
    assert set(softmax["probe"]) == {"network_softmax"} and set(softmax["layer"]) == {"output"}
