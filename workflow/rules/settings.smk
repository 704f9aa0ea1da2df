# The workflow's settings, read once while it is parsed: the configuration (checked before any job), the paths
# the rules write under, and what each wildcard may hold. common.smk includes it first.
from pathlib import Path

from latentgen.config import (
    ConfigError,
    check_config,
    retrained_pairs,
    warn_unshown_pairs,
)

try:
    config = check_config(
        config
    )  # schema + semantic checks, defaults filled; before any job
except ConfigError as error:
    raise WorkflowError(f"invalid configuration:\n{error}")

# A configured pair that no figure shows is trained and scored, but drawn nowhere: say so.
warn_unshown_pairs(config)

RESULTS = config["results"].rstrip("/")
WORKFLOW_DIR = Path(workflow.basedir) / "workflow"
DATASETS_DIR = config["datasets_dir"].rstrip("/")
# A run; {variant} is empty for standard training, a subdirectory edit<E> for the run edited at epoch E (its VeLPIC
# vectors written into the pre-softmax layer, then trained on; e.g. mlp-mnist/c40/s0/edit40), or clean for the run
# retrained without the examples its label issues flag (label_issues.retrain; e.g. mlp-mnist/c40/s0/clean).
RUN = "{pair}/c{corruption}/s{seed}{variant}"
RUN_SEPARATOR = "/"
PREPARED_FILES = [
    "train_images.npy",
    "train_labels.npy",
    "test_images.npy",
    "test_labels.npy",
    "meta.json",
]


wildcard_constraints:
    pair=r"[a-z0-9]+-[a-z0-9_]+(?:-[a-z0-9_]+)?",  # <model>-<dataset>[-<variant>]
    dataset=r"[a-z0-9_]+",
    corruption=r"\d+",
    seed=r"\d+",
    variant=r"(?:/edit\d+|/clean)?",
    epoch=r"\d{4}",
    number=r"\d+",
