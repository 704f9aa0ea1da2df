"""One line per claim id: what the row tests (the report and docs/results.md print it)."""

from __future__ import annotations

GLOSSARY: dict[str, str] = {
    "model_falls_from_peak": "the network's test accuracy falls from its peak by the final epoch (memorization)",
    "probe_falls_less": "MASC's / VeLPIC's best layer (chosen on the test set) falls less than the model",
    "probe_plateaus_higher": "MASC's / VeLPIC's best layer (chosen on the test set) ends above the model",
    "probe_falls_less_heldout_layer": "the same, the layer chosen on the held-out slice (no test data)",
    "probe_plateaus_higher_heldout_layer": "the same, the layer chosen on the held-out slice (no test data)",
    "velpic_beats_masc": "VeLPIC above MASC on a layer at the final epoch",
    "velpic_wins_most_layers": "VeLPIC above MASC in more than half of the layers",
    "velpic_margin_grows": "the mean VeLPIC - MASC margin is larger than at the next lower rate",
    "transfer_beats_model": "the network with VeLPIC's vectors as its head beats the network (after memorization)",
    "transfer_bias_beats_model": "the same with the trained head bias kept",
    "transfer_other_layer_beats_last": "the transfer from some earlier layer beats the last layer's (test-set choice)",
    "transfer_heldout_layer_vs_last": "the transfer from the held-out slice's layer is no worse than the last's",
    "transfer_equals_velpic": "the transfer predicts exactly what VeLPIC predicts, image by image",
    "selected_beats_model": "the (probe, layer) chosen on the held-out slice beats the model",
    "selected_near_test_best": "the held-out choice is within 1 pp of the best (probe, layer) on the test set",
    "heldout_slice_unbiased": "held-out noisy accuracy = (1 - c)·test accuracy + c/K: the slice was not memorized",
    "best_probe_family": "the held-out slice picks the probe family that is best on the test set (within 1 pp)",
    "other_probe_beats_paper_probes": "a probe beyond MASC and VeLPIC beats both (each on its best layer)",
    "edit_gains": "writing VeLPIC's vectors into the head at epoch E raises test accuracy at E",
    "edit_keeps_gain": "the edited model still beats standard training after training on",
    "label_issues_beat_network": "latent generalization's flags find the wrong labels better (AUPRC) than "
    "cleanlab on the network's own softmax, after memorization",
    "label_issues_beat_best_baseline": "the same against the best baseline (pixel logistic regression, deep k-NN, ...)",
    "retrained_beats_memorized": "the network retrained without the flagged examples beats the memorized network",
    "retrained_beats_repaired": "the same against the memorized network's `latentgen repair` (no retraining)",
    "run_learned": "per run: the training loss left ln K (the network learned something)",
}
