"""latentgen.probes.names: the torch-free probe table agrees with the probes scoring builds, the schema, and the
rows scoring writes besides them."""

import subprocess
import sys

import yaml

from latentgen.config import SCHEMA_PATH
from latentgen.probes.family import PROBES
from latentgen.probes.names import (
    ORACLE_PROBES,
    OTHER_ROWS,
    PROBE_DESCRIPTIONS,
    PROBE_LABELS,
    PROBE_NAMES,
    PROBE_TABLE,
)
from latentgen.scoring.selection import NON_CANDIDATES, SELECTED


def test_every_named_probe_is_built_and_the_oracles_are_named():
    assert tuple(PROBES) == PROBE_NAMES  # the same probes, in scoring order
    assert ORACLE_PROBES <= set(PROBE_NAMES)
    assert all("ORACLE" in PROBE_DESCRIPTIONS[name] for name in ORACLE_PROBES)
    assert all("ORACLE" not in PROBE_DESCRIPTIONS[name] for name in set(PROBE_TABLE) - ORACLE_PROBES)


def test_the_table_names_every_row_scoring_writes_once():
    """The fitted probes and the other rows (the model, the transfers, the held-out choice) split the table, and
    the other rows are exactly the ones the held-out choice never picks."""
    assert set(PROBE_NAMES) | OTHER_ROWS == set(PROBE_TABLE) and not set(PROBE_NAMES) & OTHER_ROWS
    assert OTHER_ROWS == NON_CANDIDATES and SELECTED in OTHER_ROWS
    assert set(PROBE_LABELS) == set(PROBE_DESCRIPTIONS) == set(PROBE_TABLE)
    labels = list(PROBE_LABELS.values())
    assert len(set(labels)) == len(labels) and all(label.strip() == label != "" for label in labels)


def test_the_schema_offers_exactly_these_probes():
    text = SCHEMA_PATH.read_text()
    schema = yaml.safe_load(text)
    probes = schema["properties"]["scoring"]["properties"]["probes"]
    assert set(probes["items"]["enum"]) == set(PROBE_NAMES)
    assert not OTHER_ROWS & set(probes["items"]["enum"])  # a row of another kind is never a configurable probe


def test_importing_it_imports_no_torch():
    code = "import sys, latentgen.probes.names; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
