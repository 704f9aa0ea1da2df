"""Which of the paper's claims a results set reproduces: one row per claim, its criterion written out, yes/no.

Computed from the tidy scores (split ``test`` only; accuracies in %) as seed means, a run that stopped counted
with its final values up to its setting's last epoch (``latentgen.seed_means``, as the figures draw them), and
from the runs' training histories. Per pair and corruption rate strictly between 0 % and 100 % (the paper's
claims are about memorizing partly corrupted labels):

- dynamics: the model's test accuracy falls from its peak by the final epoch; each probe's best layer (highest
  peak) falls less than the model and ends higher;
- VeLPIC - MASC at the final epoch, per layer; VeLPIC wins in most layers; its mean margin grows with corruption;
- the transfer beats the model at the final epoch, and equals VeLPIC on the last layer at every checkpoint
  (exactly: the transferred head computes VeLPIC's decision); the transfer with the trained bias kept
  (``transfer_bias``) against the model, where such rows exist;
- per run, that it learned: its training loss a few epochs in is no longer the loss of a uniform guess, ln K.

Free of torch and of plotting, so the workflow's light job runs it without either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from latentgen.model_names import PROBE_LAYERS
from latentgen.seed_means import seed_spread

CLAIM_COLUMNS = ["pair", "corruption", "seed", "n_seeds", "claim", "subject", "layer", "epoch", "value",
                 "reference", "unit", "criterion", "holds", "detail"]
HISTORY_COLUMNS = ["pair", "corruption", "seed", "epoch", "train_loss", "num_classes"]
PROBE_NAMES = {"model": "model", "masc": "MASC", "velpic": "VeLPIC", "transfer": "transfer",
               "transfer_bias": "transfer with the trained bias"}
COMPARED_PROBES = ("masc", "velpic")
# A network that learns nothing predicts uniformly: its cross-entropy is ln K. Epoch 3 is past the first
# steps of every configured optimizer; a run still within 1 % of ln K there has not started to fit.
LEARNING_CHECK_EPOCH = 3
LEARNING_TOLERANCE = 0.01


# --------------------------------------------------------------------------------------------------------------
# Seed means
# --------------------------------------------------------------------------------------------------------------


def _is_partly_corrupted(corruption: pd.Series) -> pd.Series:
    return (corruption > 0) & (corruption < 100)


def seed_mean_test_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean test accuracy (%) per pair, corruption, epoch, probe and layer, runs carried forward."""
    rows = scores[(scores["split"] == "test") & _is_partly_corrupted(scores["corruption"])]
    rows = rows.assign(percent=100.0 * rows["accuracy"])
    return seed_spread(rows, "percent", ["probe", "layer"])


def _curve(means: pd.DataFrame, probe: str, layer: str | None = None) -> pd.Series:
    """Mean accuracy by epoch of one probe (and layer) of one setting."""
    rows = means[(means["probe"] == probe) & ((means["layer"] == layer) if layer is not None else True)]
    return rows.set_index("epoch")["mean"].sort_index()


def _layers(means: pd.DataFrame, probe: str, pair: str) -> list[str]:
    """The probe's layers in the model's order, input side first (unknown layers after, sorted)."""
    present = set(means.loc[means["probe"] == probe, "layer"])
    order = list(PROBE_LAYERS.get(pair.partition("-")[0], ()))
    return [layer for layer in order if layer in present] + sorted(present - set(order))


# --------------------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------------------


def _row(claim: str, subject: str, layer: str, epoch: int | None, value: float, reference: float, unit: str,
         criterion: str, holds: bool, detail: str) -> dict:
    return {"claim": claim, "subject": subject, "layer": layer, "epoch": epoch, "value": value,
            "reference": reference, "unit": unit, "criterion": criterion, "holds": "yes" if holds else "no",
            "detail": detail}


def _peak(curve: pd.Series) -> tuple[int, float, float]:
    """(epoch of the peak, peak, drop from the peak to the final epoch); the earliest epoch wins a tie."""
    peak_epoch = int(curve.idxmax())
    return peak_epoch, float(curve.max()), float(curve.max() - curve.iloc[-1])


def _dynamics_rows(means: pd.DataFrame, pair: str) -> list[dict]:
    model = _curve(means, "model")
    final_epoch = int(model.index[-1])
    model_peak_epoch, model_peak, model_drop = _peak(model)
    model_final = float(model.iloc[-1])
    rows = [_row("model_falls_from_peak", "model", "output", model_peak_epoch, model_drop, 0.0, "pp",
                 "the model's test accuracy falls from its peak to the final epoch: drop > 0 pp", model_drop > 0,
                 f"peak {model_peak:.1f} % at epoch {model_peak_epoch}, {model_final:.1f} % at final epoch "
                 f"{final_epoch}")]
    for probe in COMPARED_PROBES:
        curves = {layer: _curve(means, probe, layer) for layer in _layers(means, probe, pair)}
        if not curves:
            continue
        best = max(curves, key=lambda layer: curves[layer].max())  # first layer (input side) wins a tie
        peak_epoch, peak, drop = _peak(curves[best])
        final = float(curves[best].iloc[-1])
        detail = (f"best layer {best}: peak {peak:.1f} % at epoch {peak_epoch}, {final:.1f} % at final epoch "
                  f"{final_epoch}; model peak at epoch {model_peak_epoch}")
        name = PROBE_NAMES[probe]
        rows.append(_row("probe_falls_less", probe, best, peak_epoch, drop, model_drop, "pp",
                         f"{name}'s best layer falls less from its peak to the final epoch than the model: "
                         "drop < the model's drop", drop < model_drop, detail))
        rows.append(_row("probe_plateaus_higher", probe, best, final_epoch, final, model_final, "%",
                         f"{name}'s best layer ends above the model: accuracy at the final epoch > the model's",
                         final > model_final, detail))
    return rows


def velpic_margins(means: pd.DataFrame, pair: str) -> pd.Series:
    """VeLPIC - MASC (pp) per layer at the setting's final epoch, layers in the model's order."""
    final_epoch = means["epoch"].max()
    at_final = means[means["epoch"] == final_epoch]
    velpic = at_final[at_final["probe"] == "velpic"].set_index("layer")["mean"]
    masc = at_final[at_final["probe"] == "masc"].set_index("layer")["mean"]
    layers = [layer for layer in _layers(means, "velpic", pair) if layer in masc.index]
    return (velpic - masc).reindex(layers)


def _velpic_rows(means: pd.DataFrame, pair: str, previous: tuple[int, float] | None) -> list[dict]:
    """Per-layer margins, the majority claim, and (with the next lower rate's mean margin) the growth claim."""
    margins = velpic_margins(means, pair)
    final_epoch = int(means["epoch"].max())
    rows = [_row("velpic_beats_masc", "velpic", layer, final_epoch, float(margin), 0.0, "pp",
                 "VeLPIC \u2212 MASC > 0 pp at the final epoch", margin > 0, "")
            for layer, margin in margins.items()]
    if margins.empty:
        return rows
    wins = int((margins > 0).sum())
    rows.append(_row("velpic_wins_most_layers", "velpic", "all", final_epoch, float(wins), len(margins) / 2,
                     "layers", "VeLPIC beats MASC at the final epoch in more than half of the layers",
                     wins > len(margins) / 2, f"{wins} of {len(margins)} layers"))
    if previous is not None:
        previous_rate, previous_margin = previous
        mean_margin = float(margins.mean())
        rows.append(_row("velpic_margin_grows", "velpic", "all", final_epoch, mean_margin, previous_margin, "pp",
                         "the mean VeLPIC \u2212 MASC margin over layers at the final epoch is larger than at the "
                         f"next lower rate ({previous_rate} %)", mean_margin > previous_margin, ""))
    return rows


def _transfer_rows(means: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    """Transfer (and transfer_bias, where scored) against the model at the final epoch, and the exactness check
    of the transfer against VeLPIC on the same layer over every run and checkpoint (``runs``: the setting's raw
    test rows, not seed means, so that no averaging can hide a difference)."""
    final_epoch = int(means["epoch"].max())
    model_final = float(_curve(means, "model").iloc[-1])
    rows = []
    for probe, claim in (("transfer", "transfer_beats_model"), ("transfer_bias", "transfer_bias_beats_model")):
        curve_rows = means[means["probe"] == probe]
        if curve_rows.empty:
            continue
        layer = str(curve_rows["layer"].iloc[-1])
        final = float(_curve(means, probe, layer).iloc[-1])
        rows.append(_row(claim, probe, layer, final_epoch, final - model_final, 0.0, "pp",
                         f"{PROBE_NAMES[probe]} \u2212 model > 0 pp at the final epoch",
                         final - model_final > 0, f"{final:.1f} % against the model's {model_final:.1f} %"))
    if (runs["probe"] == "transfer").any():
        rows.append(_transfer_exactness_row(runs))
    return rows


def _transfer_exactness_row(runs: pd.DataFrame) -> dict:
    keys = ["seed", "epoch", "layer"]
    transfer = runs[runs["probe"] == "transfer"][keys + ["accuracy"]]
    velpic = runs[runs["probe"] == "velpic"][keys + ["accuracy"]]
    both = transfer.merge(velpic, on=keys, how="left", suffixes=("_transfer", "_velpic"))
    layer = str(transfer["layer"].iloc[0])
    missing = int(both["accuracy_velpic"].isna().sum())
    largest = float((100.0 * (both["accuracy_transfer"] - both["accuracy_velpic"])).abs().max())
    n_runs = both["seed"].nunique()
    detail = f"{len(both)} checkpoints over {n_runs} run{'' if n_runs == 1 else 's'}"
    if missing:
        detail += f"; {missing} without a VeLPIC score on {layer}"
    return _row("transfer_equals_velpic", "transfer", layer, None, largest, 0.0, "pp",
                "max |transfer \u2212 VeLPIC on the last layer| over every run and checkpoint = 0 exactly",
                missing == 0 and largest == 0.0, detail)


def _setting_claims(means: pd.DataFrame, runs: pd.DataFrame, pair: str,
                    previous: tuple[int, float] | None) -> list[dict]:
    n_seeds = int(means["n_seeds"].max())
    rows = _dynamics_rows(means, pair) + _velpic_rows(means, pair, previous) + _transfer_rows(means, runs)
    return [{**row, "seed": pd.NA, "n_seeds": n_seeds} for row in rows]


def has_learned(train_loss: float, num_classes: int) -> bool:
    """A training loss more than 1 % below ln K, the loss of a uniform guess (the job log warns otherwise)."""
    return train_loss < (1.0 - LEARNING_TOLERANCE) * math.log(num_classes)


def learning_rows(histories: pd.DataFrame) -> list[dict]:
    """One row per run below 100 % corruption: did its training loss leave ln K by epoch 3 (or its last)?

    At 100 % every label is random: a loss near ln K for the first epochs is expected there, not a failure.
    """
    rows = []
    runs = histories[histories["corruption"] < 100]
    for (pair, corruption, seed), history in runs.groupby(["pair", "corruption", "seed"], sort=True):
        epoch = min(LEARNING_CHECK_EPOCH, int(history["epoch"].max()))
        loss = float(history.loc[history["epoch"] == epoch, "train_loss"].iloc[0])
        uniform = math.log(int(history["num_classes"].iloc[0]))
        learned = has_learned(loss, int(history["num_classes"].iloc[0]))
        rows.append({"pair": pair, "corruption": int(corruption), "seed": int(seed), "n_seeds": 1,
                     **_row("run_learned", "model", "output", epoch, loss, uniform, "nats",
                            f"training loss at epoch {epoch} more than {100 * LEARNING_TOLERANCE:.0f} % below "
                            "ln K, the loss of a uniform guess", learned,
                            "" if learned else "did not learn: its figures show an untrained network")})
    return rows


def _settings(means: pd.DataFrame) -> Iterable[tuple[str, list[int]]]:
    for pair, pair_means in means.groupby("pair", sort=True):
        yield pair, sorted(int(rate) for rate in pair_means["corruption"].unique())


def claims_table(scores: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """The claims of every pair and rate strictly between 0 % and 100 %, then one learning row per run.

    ``histories``: one row per run and epoch with columns pair, corruption, seed, epoch, train_loss and
    num_classes (K). Columns of the result: see ``CLAIM_COLUMNS``; ``seed`` is empty on seed-mean rows.
    """
    means = seed_mean_test_accuracy(scores)
    tested = scores[(scores["split"] == "test") & _is_partly_corrupted(scores["corruption"])]
    rows: list[dict] = []
    for pair, rates in _settings(means):
        previous = None
        for rate in rates:
            setting_means = means[(means["pair"] == pair) & (means["corruption"] == rate)]
            runs = tested[(tested["pair"] == pair) & (tested["corruption"] == rate)]
            rows += [{"pair": pair, "corruption": rate, **row}
                     for row in _setting_claims(setting_means, runs, pair, previous)]
            margins = velpic_margins(setting_means, pair)
            previous = (rate, float(margins.mean())) if not margins.empty else None
    rows += learning_rows(histories[HISTORY_COLUMNS])
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    table["seed"] = table["seed"].astype("Int64")
    table["epoch"] = table["epoch"].astype("Int64")
    return table
