"""The paper's central claims about memorization: the model falls from its peak; each probe's best layer falls
less and ends higher.  The premise of the second pair is the first: where the model never fell (its peak is its
final epoch, or its fall is within the noise), they are n/a."""

from __future__ import annotations

from latentgen.probes.names import PROBE_LABELS
from latentgen.report.claims.evidence import Point
from latentgen.report.claims.means import best_layer, curve, layers_of, peak
from latentgen.report.claims.rows import claim_row, not_applicable_row
from latentgen.report.claims.setting import Setting

COMPARED_PROBES = ("masc", "velpic")  # the paper's probes
TEST_CHOICE = "best layer chosen on the test set (an oracle choice, as the paper)"
HELDOUT_CHOICE = "best layer chosen on the held-out slice of the corrupted training set (no test data)"


def model_falls_row(setting: Setting) -> dict:
    peak_epoch, peak_value = setting.model_peak()
    final = setting.final_epoch
    estimate = setting.contrast(Point("model", "output", peak_epoch), Point("model", "output", final, -1.0))
    final_value = float(curve(setting.means, "model").iloc[-1])
    return claim_row(
        "model_falls_from_peak",
        "model",
        "output",
        peak_epoch,
        estimate,
        "the model's test accuracy at its peak (epoch chosen on the test set) \u2212 at the final epoch > 0 pp",
        f"peak {peak_value:.1f} % at epoch {peak_epoch}, {final_value:.1f} % at final epoch {final}",
    )


def memorized(falls: dict) -> str:
    """Why the memorizing phase is absent ('' when the model clearly fell from its peak)."""
    if falls["outcome"] == "holds":
        return ""
    if falls["epoch"] == falls.get("final_epoch") or falls["value"] == 0:
        return "no memorizing phase: the model's test accuracy peaked at the final epoch"
    return f"no clear memorizing phase: the model's fall from its peak is {falls['outcome']} ({falls['value']:.1f} pp)"


def _probe_rows(setting: Setting, probe: str, suffix: str, layer: str, choice: str, absent: str) -> list[dict]:
    name, final = PROBE_LABELS[probe], setting.final_epoch
    falls_less = (
        f"{name}'s best layer ({choice}) falls less from its peak than the model: model drop \u2212 its drop > 0 pp"
    )
    ends_higher = f"{name}'s best layer ({choice}) ends above the model: its final accuracy \u2212 the model's > 0 pp"
    if absent:
        return [
            not_applicable_row(f"probe_falls_less{suffix}", probe, layer, None, falls_less, absent),
            not_applicable_row(f"probe_plateaus_higher{suffix}", probe, layer, final, ends_higher, absent),
        ]
    model_peak_epoch, _ = setting.model_peak()
    probe_peak_epoch, probe_peak = peak(curve(setting.means, probe, layer))
    drop_difference = setting.contrast(
        Point("model", "output", model_peak_epoch),
        Point("model", "output", final, -1.0),
        Point(probe, layer, probe_peak_epoch, -1.0),
        Point(probe, layer, final),
    )
    higher = setting.contrast(Point(probe, layer, final), Point("model", "output", final, -1.0))
    detail = f"{choice}: {layer}; its test peak {probe_peak:.1f} % at epoch {probe_peak_epoch}"
    return [
        claim_row(f"probe_falls_less{suffix}", probe, layer, probe_peak_epoch, drop_difference, falls_less, detail),
        claim_row(f"probe_plateaus_higher{suffix}", probe, layer, final, higher, ends_higher, detail),
    ]


def dynamics_rows(setting: Setting) -> list[dict]:
    falls = model_falls_row(setting)
    absent = memorized({**falls, "final_epoch": setting.final_epoch})
    rows = [falls]
    for probe in COMPARED_PROBES:
        curves = {layer: curve(setting.means, probe, layer) for layer in layers_of(setting.means, probe, setting.pair)}
        if not curves:
            continue
        for suffix, ranking, choice in (("", None, TEST_CHOICE), ("_heldout_layer", setting.heldout, HELDOUT_CHOICE)):
            layer = best_layer(curves, ranking if suffix else None, probe)
            if layer is not None and not (suffix and setting.heldout.empty):
                rows += _probe_rows(setting, probe, suffix, layer, choice, absent)
    return rows
