import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules next to the tests


@pytest.fixture(scope="session")
def prepared_datasets(tmp_path_factory) -> Path:
    """Real MNIST and Fashion-MNIST from the offline sources, prepared once per test session."""
    from latentgen import datasets

    root = tmp_path_factory.mktemp("datasets")
    for name in ("mnist", "fashion_mnist"):
        datasets.prepare(name, root / name, source="auto")
    return root
