"""latentgen.probes.names: the torch-free probe list agrees with the probes scoring builds and the schema."""

import subprocess
import sys

import yaml

from latentgen.config import SCHEMA_PATH
from latentgen.probes.family import PROBES
from latentgen.probes.names import ORACLE_PROBES, PROBE_DESCRIPTIONS, PROBE_NAMES


def test_every_named_probe_is_built_and_the_oracles_are_named():
    assert set(PROBES) == set(PROBE_NAMES) and PROBE_NAMES == tuple(PROBE_DESCRIPTIONS)
    assert ORACLE_PROBES <= set(PROBE_NAMES)
    assert all("ORACLE" in PROBE_DESCRIPTIONS[name] for name in ORACLE_PROBES)


def test_the_schema_offers_exactly_these_probes():
    text = SCHEMA_PATH.read_text()
    schema = yaml.safe_load(text)
    probes = schema["properties"]["scoring"]["properties"]["probes"]
    assert set(probes["items"]["enum"]) == set(PROBE_NAMES)


def test_importing_it_imports_no_torch():
    code = "import sys, latentgen.probes.names; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
