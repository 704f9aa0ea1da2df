"""Which of the paper's claims a results set reproduces: one row per claim, its criterion written out, yes/no.

Computed from the tidy scores (split ``test`` only; accuracies in %) as seed means, a run that stopped counted
with its final values up to its setting's last epoch (``latentgen.report.seed_means``, as the figures draw them), and
from the runs' training histories. Per pair and corruption rate strictly between 0 % and 100 % (the paper's
claims are about memorizing partly corrupted labels):

- dynamics: the model's test accuracy falls from its peak by the final epoch; each probe's best layer (highest
  peak) falls less than the model and ends higher -- the best layer chosen twice, and said which on every row:
  on the test set as the paper does (an oracle choice; claims ``probe_falls_less``, ``probe_plateaus_higher``) and
  on the held-out slice of the corrupted training set (``latentgen.scoring.selection``; the same claims with suffix
  ``_heldout_layer``), which reads no test data;
- the held-out choice (probe ``selected``) against the model and against the best (probe, layer) on the test set;
- every probe family's best layer at the final epoch: which family is best, and whether a probe beyond the
  paper's MASC and VeLPIC beats both (oracles fitted on true labels, ``*_true``, reported, never the answer);
- VeLPIC - MASC at the final epoch, per layer; VeLPIC wins in most layers; its mean margin grows with corruption;
- the transfer (last layer) beats the model at the final epoch; the transfer from some other layer beats the last
  layer's, and the transfer from the layer chosen on the held-out slice against the last layer's; the transfer
  equals VeLPIC on the same layer at every checkpoint and layer (exactly: its head computes VeLPIC's decision);
  the transfer with the trained bias kept (``transfer_bias``) against the model, where such rows exist;
- per run, that it learned: its training loss a few epochs in is no longer the loss of a uniform guess, ln K.

Free of torch and of plotting, so the workflow's light job runs it without either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

from latentgen.scoring.selection import RANKING_SPLIT, SELECTED, is_candidate
from latentgen.training.learning import (
    LEARNED_ACCURACY_OVER_CHANCE,
    LEARNING_CHECK_EPOCH,
    LEARNING_TOLERANCE,
    has_learned,
)
from latentgen.training.model_names import PROBE_LAYERS
from latentgen.report.seed_means import run_final_epochs, seed_spread

CLAIM_COLUMNS = [
    "pair",
    "corruption",
    "seed",
    "n_seeds",
    "claim",
    "subject",
    "layer",
    "epoch",
    "value",
    "reference",
    "unit",
    "criterion",
    "holds",
    "detail",
]
HISTORY_COLUMNS = ["pair", "corruption", "seed", "epoch", "train_loss", "train_accuracy_true", "num_classes"]
PROBE_NAMES = {
    "model": "model",
    "masc": "MASC",
    "velpic": "VeLPIC",
    "transfer": "transfer",
    "transfer_bias": "transfer with the trained bias",
    SELECTED: "the held-out choice",
}
COMPARED_PROBES = ("masc", "velpic")
PAPER_PROBES = ("masc", "velpic")
TEST_CHOICE = "best layer chosen on the test set (an oracle choice, as the paper)"
HELDOUT_CHOICE = "best layer chosen on the held-out slice of the corrupted training set (no test data)"
# The held-out choice may lose a little against the oracle: within this many pp it counts as finding the best.
SELECTION_TOLERANCE_PP = 1.0


# --------------------------------------------------------------------------------------------------------------
# Seed means
# --------------------------------------------------------------------------------------------------------------


def _is_partly_corrupted(corruption: pd.Series) -> pd.Series:
    return (corruption > 0) & (corruption < 100)


def seed_mean_accuracy(scores: pd.DataFrame, split: str) -> pd.DataFrame:
    """Seed-mean accuracy (%) on ``split`` per pair, corruption, epoch, probe and layer, runs carried forward.

    The ``selected`` rows count as one series (layer ``"chosen"``) whatever each seed and checkpoint chose.
    """
    rows = scores[(scores["split"] == split) & _is_partly_corrupted(scores["corruption"])]
    rows = rows.assign(percent=100.0 * rows["accuracy"], layer=rows["layer"].where(rows["probe"] != SELECTED, "chosen"))
    return seed_spread(rows, "percent", ["probe", "layer"])


def seed_mean_test_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean test accuracy (%) per pair, corruption, epoch, probe and layer, runs carried forward."""
    return seed_mean_accuracy(scores, "test")


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


def _row(
    claim: str,
    subject: str,
    layer: str,
    epoch: int | None,
    value: float,
    reference: float,
    unit: str,
    criterion: str,
    holds: bool,
    detail: str,
) -> dict:
    return {
        "claim": claim,
        "subject": subject,
        "layer": layer,
        "epoch": epoch,
        "value": value,
        "reference": reference,
        "unit": unit,
        "criterion": criterion,
        "holds": "yes" if holds else "no",
        "detail": detail,
    }


def _peak(curve: pd.Series) -> tuple[int, float, float]:
    """(epoch of the peak, peak, drop from the peak to the final epoch); the earliest epoch wins a tie."""
    peak_epoch = int(curve.idxmax())
    return peak_epoch, float(curve.max()), float(curve.max() - curve.iloc[-1])


def _best_layer(curves: dict[str, pd.Series], ranking: pd.DataFrame | None, probe: str) -> str | None:
    """The layer with the highest peak: of its test curve (``ranking`` None), else of its held-out curve.
    The first layer (input side) wins a tie."""
    if ranking is None:
        return max(curves, key=lambda layer: curves[layer].max())
    peaks = {layer: _curve(ranking, probe, layer).max() for layer in curves}
    peaks = {layer: peak for layer, peak in peaks.items() if pd.notna(peak)}
    return max(peaks, key=peaks.get) if peaks else None


def _dynamics_rows(means: pd.DataFrame, pair: str, heldout: pd.DataFrame) -> list[dict]:
    model = _curve(means, "model")
    final_epoch = int(model.index[-1])
    model_peak_epoch, model_peak, model_drop = _peak(model)
    model_final = float(model.iloc[-1])
    rows = [
        _row(
            "model_falls_from_peak",
            "model",
            "output",
            model_peak_epoch,
            model_drop,
            0.0,
            "pp",
            "the model's test accuracy falls from its peak to the final epoch: drop > 0 pp",
            model_drop > 0,
            f"peak {model_peak:.1f} % at epoch {model_peak_epoch}, {model_final:.1f} % at final epoch {final_epoch}",
        )
    ]
    for probe in COMPARED_PROBES:
        curves = {layer: _curve(means, probe, layer) for layer in _layers(means, probe, pair)}
        if not curves:
            continue
        for suffix, ranking, choice in (("", None, TEST_CHOICE), ("_heldout_layer", heldout, HELDOUT_CHOICE)):
            best = _best_layer(curves, ranking, probe)
            if best is None:  # nothing held out
                continue
            peak_epoch, peak, drop = _peak(curves[best])
            final = float(curves[best].iloc[-1])
            detail = (
                f"{choice}: {best}; test peak {peak:.1f} % at epoch {peak_epoch}, {final:.1f} % at final "
                f"epoch {final_epoch}; model peak at epoch {model_peak_epoch}"
            )
            name = PROBE_NAMES[probe]
            rows.append(
                _row(
                    f"probe_falls_less{suffix}",
                    probe,
                    best,
                    peak_epoch,
                    drop,
                    model_drop,
                    "pp",
                    f"{name}'s best layer ({choice}) falls less from its peak to the final epoch than the "
                    "model: drop < the model's drop",
                    drop < model_drop,
                    detail,
                )
            )
            rows.append(
                _row(
                    f"probe_plateaus_higher{suffix}",
                    probe,
                    best,
                    final_epoch,
                    final,
                    model_final,
                    "%",
                    f"{name}'s best layer ({choice}) ends above the model: accuracy at the final epoch > the model's",
                    final > model_final,
                    detail,
                )
            )
    return rows


def _final(means: pd.DataFrame) -> pd.DataFrame:
    """Seed means at the setting's final epoch, indexed by (probe, layer)."""
    return means[means["epoch"] == means["epoch"].max()].set_index(["probe", "layer"])["mean"]


def _selection_rows(means: pd.DataFrame) -> list[dict]:
    """The held-out choice against the model, and against the best candidate on the test set (an oracle)."""
    final = _final(means)
    if (SELECTED, "chosen") not in final.index:
        return []
    final_epoch = int(means["epoch"].max())
    chosen, model = float(final[(SELECTED, "chosen")]), float(final[("model", "output")])
    candidates = final[[is_candidate(probe) for probe, _ in final.index]]
    oracle_probe, oracle_layer = candidates.idxmax()
    gap = float(candidates.max()) - chosen
    return [
        _row(
            "selected_beats_model",
            SELECTED,
            "chosen",
            final_epoch,
            chosen - model,
            0.0,
            "pp",
            "the probe and layer chosen on the held-out slice (no test data) \u2212 model > 0 pp at the final epoch",
            chosen > model,
            f"{chosen:.1f} % against the model's {model:.1f} %",
        ),
        _row(
            "selected_near_test_best",
            SELECTED,
            f"{oracle_probe}:{oracle_layer}",
            final_epoch,
            gap,
            SELECTION_TOLERANCE_PP,
            "pp",
            "the best (probe, layer) on the test set (an oracle) \u2212 the held-out choice < "
            f"{SELECTION_TOLERANCE_PP:g} pp at the final epoch",
            gap < SELECTION_TOLERANCE_PP,
            f"oracle {oracle_probe} on {oracle_layer}: {float(candidates.max()):.1f} %; held-out choice {chosen:.1f} %",
        ),
    ]


def _family_rows(means: pd.DataFrame, heldout: pd.DataFrame) -> list[dict]:
    """Every probe family's best layer at the final epoch, over whatever probes the scores hold."""
    final = _final(means)
    families = sorted({probe for probe, _ in final.index if is_candidate(probe) or probe.endswith("_true")})
    if not families:
        return []
    final_epoch = int(means["epoch"].max())
    best = {family: final[family].idxmax() for family in families}  # test-chosen layer of each family
    accuracy = {family: float(final[family].max()) for family in families}
    detail = "; ".join(f"{f} {accuracy[f]:.1f} % ({best[f]})" for f in families)
    fair = [family for family in families if is_candidate(family)]  # oracles on true labels never win
    top = max(fair, key=accuracy.get)
    heldout_final = _final(heldout) if not heldout.empty else pd.Series(dtype=float)
    ranked = heldout_final[[is_candidate(p) for p, _ in heldout_final.index]] if len(heldout_final) else heldout_final
    rows = []
    if len(ranked):
        heldout_family = ranked.idxmax()[0]
        rows.append(
            _row(
                "best_probe_family",
                top,
                best[top],
                final_epoch,
                accuracy[top],
                accuracy[heldout_family],
                "%",
                "the family with the best layer on the test set (an oracle) is the family the held-out slice chooses",
                heldout_family == top,
                f"held-out choice: {heldout_family}; {detail}",
            )
        )
    others = [family for family in fair if family not in PAPER_PROBES]
    paper = [family for family in fair if family in PAPER_PROBES]
    if others and paper:
        challenger, champion = max(others, key=accuracy.get), max(paper, key=accuracy.get)
        margin = accuracy[challenger] - accuracy[champion]
        rows.append(
            _row(
                "other_probe_beats_paper_probes",
                challenger,
                best[challenger],
                final_epoch,
                margin,
                0.0,
                "pp",
                "a probe beyond MASC and VeLPIC, each on its best layer at the final epoch (layers "
                "compared on the test set), \u2212 the better of MASC and VeLPIC > 0 pp",
                margin > 0,
                detail,
            )
        )
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
    rows = [
        _row(
            "velpic_beats_masc",
            "velpic",
            layer,
            final_epoch,
            float(margin),
            0.0,
            "pp",
            "VeLPIC \u2212 MASC > 0 pp at the final epoch",
            margin > 0,
            "",
        )
        for layer, margin in margins.items()
    ]
    if margins.empty:
        return rows
    wins = int((margins > 0).sum())
    rows.append(
        _row(
            "velpic_wins_most_layers",
            "velpic",
            "all",
            final_epoch,
            float(wins),
            len(margins) / 2,
            "layers",
            "VeLPIC beats MASC at the final epoch in more than half of the layers",
            wins > len(margins) / 2,
            f"{wins} of {len(margins)} layers",
        )
    )
    if previous is not None:
        previous_rate, previous_margin = previous
        mean_margin = float(margins.mean())
        rows.append(
            _row(
                "velpic_margin_grows",
                "velpic",
                "all",
                final_epoch,
                mean_margin,
                previous_margin,
                "pp",
                "the mean VeLPIC \u2212 MASC margin over layers at the final epoch is larger than at the "
                f"next lower rate ({previous_rate} %)",
                mean_margin > previous_margin,
                "",
            )
        )
    return rows


def _transfer_rows(means: pd.DataFrame, runs: pd.DataFrame, pair: str, heldout: pd.DataFrame) -> list[dict]:
    """Transfer (last layer; and transfer_bias, where scored) against the model at the final epoch, the other
    layers' transfers against the last layer's, and the exactness check of the transfer against VeLPIC on the
    same layer over every run, checkpoint and layer (``runs``: the setting's raw test rows, not seed means, so
    that no averaging can hide a difference)."""
    final_epoch = int(means["epoch"].max())
    model_final = float(_curve(means, "model").iloc[-1])
    rows = []
    for probe, claim in (("transfer", "transfer_beats_model"), ("transfer_bias", "transfer_bias_beats_model")):
        curve_rows = means[means["probe"] == probe]
        if curve_rows.empty:
            continue
        layer = _layers(means, probe, pair)[-1]  # the last probed layer: the one feeding the trained head
        final = float(_curve(means, probe, layer).iloc[-1])
        rows.append(
            _row(
                claim,
                probe,
                layer,
                final_epoch,
                final - model_final,
                0.0,
                "pp",
                f"{PROBE_NAMES[probe]} \u2212 model > 0 pp at the final epoch",
                final - model_final > 0,
                f"{final:.1f} % against the model's {model_final:.1f} %",
            )
        )
    rows += _transfer_layer_rows(means, pair, heldout)
    if (runs["probe"] == "transfer").any():
        rows.append(_transfer_exactness_row(runs))
    return rows


def _transfer_layer_rows(means: pd.DataFrame, pair: str, heldout: pd.DataFrame) -> list[dict]:
    """Does transferring another layer than the last make a better model (the paper's open question)?"""
    layers = _layers(means, "transfer", pair)
    if len(layers) < 2:
        return []
    final_epoch = int(means["epoch"].max())
    final = _final(means)["transfer"]
    last, others = layers[-1], layers[:-1]
    best_other = max(others, key=lambda layer: final[layer])
    margin = float(final[best_other] - final[last])
    rows = [
        _row(
            "transfer_other_layer_beats_last",
            "transfer",
            best_other,
            final_epoch,
            margin,
            0.0,
            "pp",
            "the transfer from some layer other than the last \u2212 the last layer's > 0 pp at the final epoch "
            "(layers compared on the test set: whether such a layer exists)",
            margin > 0,
            "; ".join(f"{layer} {final[layer]:.1f} %" for layer in layers),
        )
    ]
    if not heldout.empty and (heldout["probe"] == "transfer").any():
        ranking = _final(heldout)["transfer"].reindex(layers)
        chosen = ranking.idxmax()
        gain = float(final[chosen] - final[last])
        rows.append(
            _row(
                "transfer_heldout_layer_vs_last",
                "transfer",
                chosen,
                final_epoch,
                gain,
                0.0,
                "pp",
                "the transfer from the layer chosen on the held-out slice (no test data) \u2212 the last "
                "layer's >= 0 pp at the final epoch",
                gain >= 0,
                "held-out noisy accuracy: " + "; ".join(f"{layer} {ranking[layer]:.1f} %" for layer in layers),
            )
        )
    return rows


def _transfer_exactness_row(runs: pd.DataFrame) -> dict:
    keys = ["seed", "epoch", "layer"]
    transfer = runs[runs["probe"] == "transfer"][keys + ["accuracy"]]
    velpic = runs[runs["probe"] == "velpic"][keys + ["accuracy"]]
    both = transfer.merge(velpic, on=keys, how="left", suffixes=("_transfer", "_velpic"))
    layers = sorted(transfer["layer"].unique())
    layer = layers[0] if len(layers) == 1 else "all"
    missing = int(both["accuracy_velpic"].isna().sum())
    largest = float((100.0 * (both["accuracy_transfer"] - both["accuracy_velpic"])).abs().max())
    n_runs = both["seed"].nunique()
    detail = f"{len(both)} checkpoint-layers over {n_runs} run{'' if n_runs == 1 else 's'}, layers {', '.join(layers)}"
    if missing:
        detail += f"; {missing} without a VeLPIC score on the same layer"
    return _row(
        "transfer_equals_velpic",
        "transfer",
        layer,
        None,
        largest,
        0.0,
        "pp",
        "max |transfer \u2212 VeLPIC on the same layer| over every run, checkpoint and layer = 0 exactly",
        missing == 0 and largest == 0.0,
        detail,
    )


def _setting_claims(
    means: pd.DataFrame, runs: pd.DataFrame, pair: str, previous: tuple[int, float] | None, heldout: pd.DataFrame
) -> list[dict]:
    """``means``: seed-mean test accuracies; ``heldout``: seed-mean held-out noisy accuracies (what choices read;
    empty when nothing was held out)."""
    n_seeds = int(means["n_seeds"].max())
    rows = (
        _dynamics_rows(means, pair, heldout)
        + _velpic_rows(means, pair, previous)
        + _transfer_rows(means, runs, pair, heldout)
        + _selection_rows(means)
        + _family_rows(means, heldout)
    )
    return [{**row, "seed": pd.NA, "n_seeds": n_seeds} for row in rows]


def learning_rows(histories: pd.DataFrame) -> list[dict]:
    """One row per run below 100 % corruption: did its training loss leave ln K by epoch 3 (or its last)?

    At 100 % every label is random: a loss near ln K for the first epochs is expected there, not a failure.
    """
    rows = []
    runs = histories[histories["corruption"] < 100]
    for (pair, corruption, seed), history in runs.groupby(["pair", "corruption", "seed"], sort=True):
        epoch = min(LEARNING_CHECK_EPOCH, int(history["epoch"].max()))
        at_epoch = history.loc[history["epoch"] == epoch].iloc[0]
        loss, classes = float(at_epoch["train_loss"]), int(history["num_classes"].iloc[0])
        learned = has_learned(loss, classes, float(at_epoch["train_accuracy_true"]))
        rows.append(
            {
                "pair": pair,
                "corruption": int(corruption),
                "seed": int(seed),
                "n_seeds": 1,
                **_row(
                    "run_learned",
                    "model",
                    "output",
                    epoch,
                    loss,
                    math.log(classes),
                    "nats",
                    f"training loss at epoch {epoch} more than {100 * LEARNING_TOLERANCE:.0f} % below "
                    f"ln K (the loss of a uniform guess), or accuracy on the clean training labels "
                    f"above {LEARNED_ACCURACY_OVER_CHANCE:g}/K",
                    learned,
                    "" if learned else "did not learn: its figures show an untrained network",
                ),
            }
        )
    return rows


def _settings(means: pd.DataFrame) -> Iterable[tuple[str, list[int]]]:
    for pair, pair_means in means.groupby("pair", sort=True):
        yield pair, sorted(int(rate) for rate in pair_means["corruption"].unique())


def split_edited_runs(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(standard training, edited runs): ``edit_epoch`` is null for standard training (tables from before edits
    existed have no such column: all standard)."""
    if "edit_epoch" not in scores.columns:
        return scores, scores.iloc[0:0]
    edited = scores["edit_epoch"].notna()
    return scores[~edited], scores[edited]


def _value_at(curve: pd.Series, epoch: int) -> float:
    """The curve at ``epoch``, or at its last epoch before it (a setting whose runs all stopped earlier)."""
    return float(curve.loc[:epoch].iloc[-1])


def _stopped_before(final_epochs: pd.DataFrame, pair: str, rate: int, edit: int) -> str:
    """A note for the rows of edit E when standard runs of the setting stopped before E (their edits were made on
    their final checkpoints, latentgen.training.schedule.edit_base_epoch); empty otherwise."""
    runs = final_epochs[(final_epochs["pair"] == pair) & (final_epochs["corruption"] == rate)]
    early = runs[runs["final_epoch"] < edit]
    if early.empty:
        return ""
    stops = ", ".join(str(int(epoch)) for epoch in sorted(early["final_epoch"]))
    return (
        f"; {len(early)} of {len(runs)} standard runs stopped before epoch {edit} (at {stops}): their edits "
        "were made on their final checkpoints"
    )


def edit_rows(
    standard_means: pd.DataFrame, edited: pd.DataFrame, standard_scores: pd.DataFrame | None = None
) -> list[dict]:
    """ "Does the edited model keep its gain?": per pair, rate and edit epoch E, the seed-mean test accuracy of the
    runs edited at E against standard training, right after the edit (epoch E) and at the edited runs' end.

    ``standard_scores``: the standard runs' scores; where given, a row says when some of them stopped before E."""
    rows: list[dict] = []
    if edited.empty:  # no edited runs (or a table from before edits existed, without the column)
        return rows
    final_epochs = (
        run_final_epochs(standard_scores, ["pair", "corruption"])
        if standard_scores is not None
        else pd.DataFrame(columns=["pair", "corruption", "seed", "final_epoch"])
    )
    for (pair, rate, edit), runs in edited.groupby(["pair", "corruption", "edit_epoch"], sort=True):
        standard = _curve(
            standard_means[(standard_means["pair"] == pair) & (standard_means["corruption"] == rate)], "model"
        )
        curve = _curve(seed_mean_test_accuracy(runs), "model")
        if standard.empty or curve.empty:
            continue
        edit, end = int(edit), int(curve.index.max())
        stopped = _stopped_before(final_epochs, pair, rate, edit)
        common = {"pair": pair, "corruption": int(rate), "seed": None, "n_seeds": int(runs["seed"].nunique())}
        for claim, epoch, statement, note in (
            (
                "edit_gains",
                edit,
                "the VeLPIC edit raises test accuracy over standard training at epoch E",
                f"seed means; edit at epoch {edit}{stopped}",
            ),
            (
                "edit_keeps_gain",
                end,
                "after training on, the edited model still beats standard training",
                f"seed means at the edited runs' last epoch {end} (standard training: its value there, carried "
                f"forward){stopped}",
            ),
        ):
            value, standard_value = float(curve.loc[epoch]), _value_at(standard, epoch)
            label = f"model edited at epoch {edit}"
            row = _row(
                claim, label, "output", epoch, value, standard_value, "%", statement, value > standard_value, note
            )
            rows.append({**common, **row})
    return rows


def claims_table(scores: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """The claims of every pair and rate strictly between 0 % and 100 %, then one learning row per run.

    ``histories``: one row per run and epoch with columns pair, corruption, seed, epoch, train_loss and
    num_classes (K). Columns of the result: see ``CLAIM_COLUMNS``; ``seed`` is empty on seed-mean rows.
    Edited runs (``edit_epoch`` set) count in their own rows only (``edit_rows``).
    """
    scores, edited = split_edited_runs(scores)
    means = seed_mean_test_accuracy(scores)
    heldout_means = seed_mean_accuracy(scores, RANKING_SPLIT)
    tested = scores[(scores["split"] == "test") & _is_partly_corrupted(scores["corruption"])]
    rows: list[dict] = []
    for pair, rates in _settings(means):
        previous = None
        for rate in rates:
            setting_means = means[(means["pair"] == pair) & (means["corruption"] == rate)]
            runs = tested[(tested["pair"] == pair) & (tested["corruption"] == rate)]
            heldout = heldout_means[(heldout_means["pair"] == pair) & (heldout_means["corruption"] == rate)]
            rows += [
                {"pair": pair, "corruption": rate, **row}
                for row in _setting_claims(setting_means, runs, pair, previous, heldout)
            ]
            margins = velpic_margins(setting_means, pair)
            previous = (rate, float(margins.mean())) if not margins.empty else None
    rows += edit_rows(means, edited, scores[scores["split"] == "test"])
    rows += learning_rows(histories[HISTORY_COLUMNS])
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    table["seed"] = table["seed"].astype("Int64")
    table["epoch"] = table["epoch"].astype("Int64")
    return table
