"""The probe family at the final epoch: which family's best layer is best, whether a probe beyond the paper's beats
MASC and VeLPIC, and VeLPIC against MASC per layer, across layers and across rates."""

from __future__ import annotations


from latentgen.report.claims.evidence import Point
from latentgen.report.claims.means import final_means, layers_of
from latentgen.report.claims.rows import claim_row, result_row
from latentgen.report.claims.selection import SELECTION_TOLERANCE_PP
from latentgen.report.claims.setting import Setting
from latentgen.common.stats import ClaimResult
from latentgen.scoring.selection import is_candidate

PAPER_PROBES = ("masc", "velpic")


def family_rows(setting: Setting) -> list[dict]:
    """Every probe family's best layer at the final epoch (layers compared on the test set), over whatever probes
    the scores hold; oracles on true labels reported, never the answer."""
    final, epoch = final_means(setting.means), setting.final_epoch
    families = sorted({probe for probe, _ in final.index if is_candidate(probe) or probe.endswith("_true")})
    fair = [family for family in families if is_candidate(family)]
    if not fair:
        return []
    best = {family: final[family].idxmax() for family in families}
    accuracy = {family: float(final[family].max()) for family in families}
    detail = "; ".join(f"{f} {accuracy[f]:.1f} % ({best[f]})" for f in families)
    top = max(fair, key=accuracy.get)
    rows = []
    chosen = _heldout_family(setting)
    if chosen is not None:
        gap = setting.contrast(Point(top, best[top], epoch), Point(chosen, best[chosen], epoch, -1.0))
        rows.append(
            claim_row(
                "best_probe_family",
                top,
                best[top],
                epoch,
                gap,
                "the family with the best layer on the test set (an oracle) \u2212 the family the held-out slice "
                f"chooses (each on its best test layer) < {SELECTION_TOLERANCE_PP:g} pp",
                f"held-out choice: {chosen}; {detail}",
                threshold=SELECTION_TOLERANCE_PP,
                direction="less",
            )
        )
    others, paper = [f for f in fair if f not in PAPER_PROBES], [f for f in fair if f in PAPER_PROBES]
    if others and paper:
        challenger, champion = max(others, key=accuracy.get), max(paper, key=accuracy.get)
        margin = setting.contrast(
            Point(challenger, best[challenger], epoch), Point(champion, best[champion], epoch, -1.0)
        )
        rows.append(
            claim_row(
                "other_probe_beats_paper_probes",
                challenger,
                best[challenger],
                epoch,
                margin,
                "a probe beyond MASC and VeLPIC, each on its best layer at the final epoch (layers compared on the "
                "test set), \u2212 the better of MASC and VeLPIC > 0 pp",
                detail,
            )
        )
    return rows


def _heldout_family(setting: Setting) -> str | None:
    """The family of the best candidate on the held-out slice at the final epoch (None when nothing was withheld)."""
    if setting.heldout.empty:
        return None
    heldout = final_means(setting.heldout)
    ranked = heldout[[is_candidate(probe) for probe, _ in heldout.index]]
    return ranked.idxmax()[0] if len(ranked) else None


def velpic_layers(setting: Setting) -> list[str]:
    final = final_means(setting.means)
    masc = {layer for probe, layer in final.index if probe == "masc"}
    return [layer for layer in layers_of(setting.means, "velpic", setting.pair) if layer in masc]


def _margin_points(setting: Setting, layers: list[str], corruption: int | None, sign: float) -> list[Point]:
    """Mean over ``layers`` of VeLPIC − MASC at the setting's final epoch, as contrast points."""
    weight = sign / len(layers)
    epoch = setting.final_epoch
    return [
        point
        for layer in layers
        for point in (
            Point("velpic", layer, epoch, weight, corruption),
            Point("masc", layer, epoch, -weight, corruption),
        )
    ]


def velpic_rows(setting: Setting, previous: Setting | None) -> list[dict]:
    """Per-layer margins, the majority claim, and (against the next lower rate) the growth claim."""
    layers, epoch = velpic_layers(setting), setting.final_epoch
    rows = [
        claim_row(
            "velpic_beats_masc",
            "velpic",
            layer,
            epoch,
            setting.contrast(Point("velpic", layer, epoch), Point("masc", layer, epoch, -1.0)),
            "VeLPIC \u2212 MASC > 0 pp at the final epoch",
            "",
        )
        for layer in layers
    ]
    if not layers:
        return rows
    rows.append(_majority_row(rows, epoch))
    previous_layers = velpic_layers(previous) if previous is not None else []
    if previous is not None and previous_layers == layers:
        points = _margin_points(setting, layers, None, 1.0)
        points += [
            Point(p.probe, p.layer, previous.final_epoch, -p.weight, previous.corruption)
            for p in _margin_points(previous, layers, previous.corruption, 1.0)
        ]
        rows.append(
            claim_row(
                "velpic_margin_grows",
                "velpic",
                "all",
                epoch,
                setting.contrast(*points),
                "the mean VeLPIC \u2212 MASC margin over layers at the final epoch \u2212 the same at the next lower "
                f"rate ({previous.corruption} %) > 0 pp",
                "",
            )
        )
    return rows


def _majority_row(layer_rows: list[dict], epoch: int) -> dict:
    """VeLPIC wins in more than half of the layers: a count, bounded by the per-layer outcomes (wins that hold
    below, wins that hold or are inconclusive above)."""
    outcomes = [row["outcome"] for row in layer_rows]
    holds, open_ = outcomes.count("holds"), outcomes.count("inconclusive")
    wins = sum(row["value"] > 0 for row in layer_rows)
    half = len(layer_rows) / 2
    outcome = "holds" if holds > half else "fails" if holds + open_ <= half else "inconclusive"
    result = ClaimResult(outcome, float(wins), float(holds), float(holds + open_), float("nan"))
    return result_row(
        "velpic_wins_most_layers",
        "velpic",
        "all",
        epoch,
        result,
        half,
        "layers",
        "VeLPIC beats MASC at the final epoch in more than half of the layers (interval: layers where the win holds, "
        "where it holds or is inconclusive)",
        f"{wins} of {len(layer_rows)} layers ahead; {holds} hold, {open_} inconclusive",
    )
