"""docs/results.md: the generated part is rewritten, the hand-written part after the marker survives."""

import pandas as pd

from latentgen.report import results_doc


def _scores() -> pd.DataFrame:
    rows = []
    for probe, layer, accuracy in [
        ("model", "output", 0.30),
        ("masc", "fc4", 0.50),
        ("velpic", "fc4", 0.60),
        ("transfer", "fc4", 0.60),
    ]:
        rows.append(
            {
                "model": "mlp",
                "dataset": "mnist",
                "pair": "mlp-mnist",
                "corruption": 80,
                "seed": 0,
                "epoch": 3,
                "layer": layer,
                "probe": probe,
                "split": "test",
                "accuracy": accuracy,
                "n_components": None,
                "fit_seconds": 0.0,
            }
        )
    return pd.DataFrame(rows)


def test_regenerating_keeps_the_hand_written_part(tmp_path):
    scores_path, page = tmp_path / "scores.parquet", tmp_path / "results.md"
    _scores().to_parquet(scores_path)
    page.write_text("# old generated table\n\n" + results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\nmeasured 0.55\n")
    results_doc.main(["results_doc", str(scores_path), str(page), "make quickstart"])
    text = page.read_text()
    assert "old generated table" not in text
    assert "| mlp-mnist | 80 | 0 | 3 | fc4 | 30.0 | 50.0 | 60.0 | 60.0 | +30.0 |" in text
    assert text.endswith(results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\nmeasured 0.55\n")


def test_a_page_without_the_marker_is_replaced_whole(tmp_path):
    scores_path, page = tmp_path / "scores.parquet", tmp_path / "results.md"
    _scores().to_parquet(scores_path)
    page.write_text("stale\n")
    results_doc.main(["results_doc", str(scores_path), str(page), "make quickstart"])
    assert "stale" not in page.read_text() and results_doc.HAND_WRITTEN_MARKER not in page.read_text()
