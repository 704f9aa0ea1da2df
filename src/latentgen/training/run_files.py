"""Where a run's files lie, defined once: the trainer writes them, the workflow's input functions and the stages
that read a run name them from here.  Torch-free, so the workflow imports it while it parses."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RunFiles", "checkpoint_name"]


def checkpoint_name(epoch: int | str) -> str:
    """The file name of a model saved at ``epoch`` (an int, or a wildcard's four digits); VeLPIC edits alike."""
    return f"epoch_{int(epoch):04d}.pt"


class RunFiles:
    """Paths inside one run directory."""

    def __init__(self, run_dir: Path | str):
        self.root = Path(run_dir)
        self.checkpoints = self.root / "checkpoints"
        self.resume = self.root / "resume.pt"
        self.history = self.root / "history.parquet"
        self.run_json = self.root / "run.json"
        # run.json and the history once more, not declared to Snakemake (which deletes declared outputs before a
        # rerun): what a rerun with unchanged settings and data restores instead of training (trainer.train's reuse)
        self.finished = self.root / "finished.json"

    def checkpoint(self, epoch: int | str) -> Path:
        return self.checkpoints / checkpoint_name(epoch)
