"""The transfer (the network with VeLPIC's vectors as its head): against the model after memorization, from other
layers than the last, and its exactness, checked image by image (``velpic_disagreements`` of the score rows)."""

from __future__ import annotations

import pandas as pd

from latentgen.common.stats import exact_agreement_outcome
from latentgen.probes.names import PROBE_LABELS
from latentgen.report.claims.evidence import Point
from latentgen.report.claims.means import final_means, layers_of
from latentgen.report.claims.rows import claim_row, not_applicable_row, result_row
from latentgen.report.claims.setting import Setting


def transfer_rows(setting: Setting, tested: pd.DataFrame, absent: str) -> list[dict]:
    """``tested``: the setting's raw test rows (every run, checkpoint and layer) for the exactness check;
    ``absent``: why there is no memorizing phase ('' when there is one), for the claims about the end state."""
    epoch, rows = setting.final_epoch, []
    for probe, claim in (("transfer", "transfer_beats_model"), ("transfer_bias", "transfer_bias_beats_model")):
        layers = layers_of(setting.means, probe, setting.pair)
        if not layers:
            continue
        criterion = f"{PROBE_LABELS[probe]} (last layer) \u2212 model > 0 pp at the final epoch, after memorization"
        if absent:
            rows.append(not_applicable_row(claim, probe, layers[-1], epoch, criterion, absent))
            continue
        estimate = setting.contrast(Point(probe, layers[-1], epoch), Point("model", "output", epoch, -1.0))
        rows.append(claim_row(claim, probe, layers[-1], epoch, estimate, criterion, ""))
    rows += transfer_layer_rows(setting)
    if (tested["probe"] == "transfer").any():
        rows.append(exactness_row(tested))
    return rows


def transfer_layer_rows(setting: Setting) -> list[dict]:
    """Does transferring another layer than the last make a better model (the paper's open question)?"""
    layers, epoch = layers_of(setting.means, "transfer", setting.pair), setting.final_epoch
    if len(layers) < 2:
        return []
    final = final_means(setting.means)["transfer"]
    last = layers[-1]
    best_other = max(layers[:-1], key=lambda layer: final[layer])
    rows = [
        claim_row(
            "transfer_other_layer_beats_last",
            "transfer",
            best_other,
            epoch,
            setting.contrast(Point("transfer", best_other, epoch), Point("transfer", last, epoch, -1.0)),
            "the transfer from some layer other than the last \u2212 the last layer's > 0 pp at the final epoch "
            "(layers compared on the test set: whether such a layer exists)",
            "; ".join(f"{layer} {final[layer]:.1f} %" for layer in layers),
        )
    ]
    if not setting.heldout.empty and (setting.heldout["probe"] == "transfer").any():
        ranking = final_means(setting.heldout)["transfer"].reindex(layers)
        chosen = ranking.idxmax()
        rows.append(
            claim_row(
                "transfer_heldout_layer_vs_last",
                "transfer",
                chosen,
                epoch,
                setting.contrast(Point("transfer", chosen, epoch), Point("transfer", last, epoch, -1.0)),
                "the transfer from the layer chosen on the held-out slice (no test data) \u2212 the last layer's "
                ">= 0 pp at the final epoch",
                "held-out noisy accuracy: " + "; ".join(f"{layer} {ranking[layer]:.1f} %" for layer in layers),
                direction="at_least",
            )
        )
    return rows


def exactness_row(tested: pd.DataFrame) -> dict:
    """The transfer predicts what VeLPIC predicts on the same float32 activations, image by image, at every run,
    checkpoint and layer: 0 disagreements in all."""
    transfer = tested[tested["probe"] == "transfer"]
    criterion = (
        "test images where the transfer's prediction \u2260 VeLPIC's on the same layer, over every run, "
        "checkpoint and layer = 0"
    )
    layers = sorted(transfer["layer"].unique())
    layer = layers[0] if len(layers) == 1 else "all"
    if "velpic_disagreements" not in transfer or transfer["velpic_disagreements"].isna().any():
        reason = "the scores hold no image-by-image disagreement counts for every transfer row"
        return not_applicable_row("transfer_equals_velpic", "transfer", layer, None, criterion, reason)
    count = int(transfer["velpic_disagreements"].sum())
    images = int(transfer["n_samples"].sum()) if "n_samples" in transfer else None
    result = exact_agreement_outcome(count, images)
    n_runs = transfer["seed"].nunique()
    detail = (
        f"{len(transfer)} checkpoint-layers over {n_runs} run{'' if n_runs == 1 else 's'}, layers {', '.join(layers)}; "
        "VeLPIC on float32 activations of the same forward pass"
    )
    return result_row("transfer_equals_velpic", "transfer", layer, None, result, 0.0, "images", criterion, detail)
