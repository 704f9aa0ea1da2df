"""A pair's name, parsed in one place: ``<model>-<dataset>``, or ``<model>-<dataset>-<variant>`` for a variant of a
paper pair trained differently (``mlp-mnist-dropout``; latentgen.config checks the names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PairName", "parse_pair", "run_identity"]


@dataclass(frozen=True)
class PairName:
    model: str
    dataset: str
    variant: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        """The paper pair a variant belongs to: ``mlp-mnist`` for ``mlp-mnist-dropout``."""
        return f"{self.model}-{self.dataset}"


def parse_pair(pair: str) -> PairName:
    """``"mlp-mnist-dropout"`` -> ``PairName("mlp", "mnist", ("dropout",))``."""
    model, dataset, *variant = pair.split("-")
    return PairName(model, dataset, tuple(variant))


def run_identity(pair: str, corruption: int, seed: int) -> dict[str, Any]:
    name = parse_pair(pair)
    return {
        "pair": pair,
        "model": name.model,
        "dataset": name.dataset,
        "corruption": int(corruption),
        "seed": int(seed),
    }
