"""Image classification tasks for the vision transformers (Section 4, Figures 3, 6 and 7).

The default profile reads two offline sources: Fashion-MNIST from Debian's dataset-fashion-mnist
(IDX files), split by class into two tasks so that the supervised pre-training task
(fashion-mnist-04: T-shirt, trouser, pullover, dress, coat) is not a downstream task
(fashion-mnist-59: sandal, shirt, sneaker, bag, ankle boot), and scikit-learn's 8x8 digits. The
paper profile reads CIFAR-10, CIFAR-100 and Tiny-ImageNet from the Hugging Face cache
(`image_hub`). Images stay uint8, channels first, at their own size; `pixel_values` resizes and
normalizes them for a model one batch at a time, so a paper-scale split never exists as floats.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..catalog.builtin import tasks_of
from ..catalog.sources import SourceError
from ..catalog.tasks import IMAGE_TASKS

if TYPE_CHECKING:  # imported where used: the Snakefile reads the task names here
    import numpy as np
    import torch

FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot"]
# task -> its entry: the folder of Fashion-MNIST's files and the classes it holds
FASHION_TASKS = tasks_of("image", "folder")
HUB_TASKS = tasks_of("image", "hub")


@dataclass(frozen=True)
class ImageData:
    """Labelled images of one task, uint8 [n, channels, height, width]. `fixed_test` holds the
    official evaluation split (images, labels), if the task has one."""

    images: np.ndarray
    labels: np.ndarray
    label_names: list[str]
    fixed_test: tuple[np.ndarray, np.ndarray] | None = None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format: magic, dimensions, then the data, big-endian)."""
    if not path.is_file():
        raise SourceError(f"Fashion-MNIST: {path} is missing; install Debian's "
                          f"dataset-fashion-mnist (`make setup` does)")
    import numpy as np

    raw = gzip.decompress(path.read_bytes())
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise SourceError(f"Fashion-MNIST: {path} is not an unsigned-byte IDX file; reinstall "
                          f"dataset-fashion-mnist")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_split(folder: Path, prefix: str,
                   classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Those of `classes`, relabelled 0..n-1 in their order."""
    import numpy as np

    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    keep = np.isin(labels, classes)
    relabel = np.zeros(10, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    return images[keep][:, None], relabel[labels[keep]]


def _fashion(task: str) -> ImageData:
    folder, classes = Path(FASHION_TASKS[task]["folder"]), FASHION_TASKS[task]["classes"]
    images, labels = _fashion_split(folder, "train", classes)
    return ImageData(images, labels, [FASHION_LABELS[c] for c in classes],
                     fixed_test=_fashion_split(folder, "t10k", classes))


def _digits() -> ImageData:
    """scikit-learn's digits: 8x8 grey levels 0..16, rescaled to 0..255."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    return ImageData(images, digits.target.astype(np.int64), [str(d) for d in range(10)])


def load_image_task(name: str) -> ImageData:
    """All labelled images of a task, in a fixed order (splitting is `data.split_indices`)."""
    if name in FASHION_TASKS:
        return _fashion(name)
    if name == "digits":
        return _digits()
    if name in HUB_TASKS:
        from .image_hub import load_hub_task

        return load_hub_task(name)
    raise SourceError(f"image task {name!r} is unknown (known: {', '.join(IMAGE_TASKS)})")



def decode_images(encoded: list[bytes | str], what: str, side: int | None = None,
                  fix: str = "set side to resize every image to one size",
                  resize: bool = True) -> np.ndarray:
    """Encoded images (bytes, or the path of a file) -> uint8 RGB [n, 3, h, w]. With `side`,
    each is resized to side x side (bilinear), or with `resize` false must already be that size
    (a hub file whose images have a known size); without, each must have the first one's size.
    `fix` says what to do when one has another size."""
    import io

    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    out = None
    for i, item in enumerate(tqdm(encoded, desc=f"decode {what}", unit="img", mininterval=2)):
        which = item if isinstance(item, str) else f"image {i}"
        try:
            with Image.open(io.BytesIO(item) if isinstance(item, bytes) else item) as image:
                rgb = image.convert("RGB")
        except OSError as exc:  # PIL's UnidentifiedImageError among them
            raise SourceError(f"{what}: {which} cannot be read as an image ({exc}); replace or "
                              f"remove it") from exc
        if side is not None and resize and rgb.size != (side, side):
            rgb = rgb.resize((side, side), Image.Resampling.BILINEAR)
        if out is None:
            width, height = (side, side) if side is not None else rgb.size
            out = np.empty((len(encoded), 3, height, width), dtype=np.uint8)
        if rgb.size != (out.shape[3], out.shape[2]):
            raise SourceError(f"{what}: {which} is {rgb.size[0]}x{rgb.size[1]}, not "
                              f"{out.shape[3]}x{out.shape[2]}; {fix}")
        out[i] = np.asarray(rgb).transpose(2, 0, 1)
    return out if out is not None else np.empty((0, 3, side or 0, side or 0), dtype=np.uint8)


def pixel_values(images: torch.Tensor, size: int, channels: int, mean: list[float],
                 std: list[float]) -> torch.Tensor:
    """uint8 [n, c, h, w] -> the model's float input: resized (bilinear) to size x size, grey
    repeated to RGB or RGB averaged to grey as the model expects, normalized by its mean and std."""
    import torch

    x = images.float() / 255.0
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            align_corners=False, antialias=x.shape[-1] > size)
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean_t) / std_t
