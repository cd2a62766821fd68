"""CIFAR-10, CIFAR-100 and Tiny-ImageNet for the paper profile, read from the Hugging Face cache.

The hub's parquet files are read directly, not through `datasets`: `hf_hub_download` resolves
each file in the cache (offline when HF_HUB_OFFLINE=1), so a missing file fails at once with the
command that fetches it, and the same code runs against a fixture cache in tests. Every image is
decoded once to uint8 RGB, channels first (Tiny-ImageNet holds some greyscale JPEGs).
"""

from __future__ import annotations

import numpy as np

from ..catalog.sources import SourceError, hub_dataset_file
from .images import ImageData, decode_images

CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                  "truck"]
# The fine labels in CIFAR-100's own order. The hub card spells class 26 "cra"; it is "crab".
CIFAR100_LABELS = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"
]
# The card's ClassLabel names of zh-plus/tiny-imagenet, labels 0..199. They are WordNet ids but
# not quite Stanford's wnids.txt (no n01855672, n02666347 for n02666196, ...): the card's list.
TINY_IMAGENET_LABELS = [
    "n01443537", "n01629819", "n01641577", "n01644900", "n01698640", "n01742172", "n01768244",
    "n01770393", "n01774384", "n01774750", "n01784675", "n01882714", "n01910747", "n01917289",
    "n01944390", "n01950731", "n01983481", "n01984695", "n02002724", "n02056570", "n02058221",
    "n02074367", "n02094433", "n02099601", "n02099712", "n02106662", "n02113799", "n02123045",
    "n02123394", "n02124075", "n02125311", "n02129165", "n02132136", "n02165456", "n02226429",
    "n02231487", "n02233338", "n02236044", "n02268443", "n02279972", "n02281406", "n02321529",
    "n02364673", "n02395406", "n02403003", "n02410509", "n02415577", "n02423022", "n02437312",
    "n02480495", "n02481823", "n02486410", "n02504458", "n02509815", "n02666347", "n02669723",
    "n02699494", "n02769748", "n02788148", "n02791270", "n02793495", "n02795169", "n02802426",
    "n02808440", "n02814533", "n02814860", "n02815834", "n02823428", "n02837789", "n02841315",
    "n02843684", "n02883205", "n02892201", "n02909870", "n02917067", "n02927161", "n02948072",
    "n02950826", "n02963159", "n02977058", "n02988304", "n03014705", "n03026506", "n03042490",
    "n03085013", "n03089624", "n03100240", "n03126707", "n03160309", "n03179701", "n03201208",
    "n03255030", "n03355925", "n03373237", "n03388043", "n03393912", "n03400231", "n03404251",
    "n03424325", "n03444034", "n03447447", "n03544143", "n03584254", "n03599486", "n03617480",
    "n03637318", "n03649909", "n03662601", "n03670208", "n03706229", "n03733131", "n03763968",
    "n03770439", "n03796401", "n03814639", "n03837869", "n03838899", "n03854065", "n03891332",
    "n03902125", "n03930313", "n03937543", "n03970156", "n03977966", "n03980874", "n03983396",
    "n03992509", "n04008634", "n04023962", "n04070727", "n04074963", "n04099969", "n04118538",
    "n04133789", "n04146614", "n04149813", "n04179913", "n04251144", "n04254777", "n04259630",
    "n04265275", "n04275548", "n04285008", "n04311004", "n04328186", "n04356056", "n04366367",
    "n04371430", "n04376876", "n04398044", "n04399382", "n04417672", "n04456115", "n04465666",
    "n04486054", "n04487081", "n04501370", "n04507155", "n04532106", "n04532670", "n04540053",
    "n04560804", "n04562935", "n04596742", "n04598010", "n06596364", "n07056680", "n07583066",
    "n07614500", "n07615774", "n07646821", "n07647870", "n07657664", "n07695742", "n07711569",
    "n07715103", "n07720875", "n07749582", "n07753592", "n07768694", "n07871810", "n07873807",
    "n07875152", "n07920052", "n07975909", "n08496334", "n08620881", "n08742578", "n09193705",
    "n09246464", "n09256479", "n09332890", "n09428293", "n12267677", "n12520864", "n13001041",
    "n13652335", "n13652994", "n13719102", "n14991210"
]

# task -> hub dataset repo, parquet file of the pool (train) and of the official test split,
# image column ({bytes, path} structs), label column, image side in pixels, label names.
HUB_IMAGE_TASKS: dict[str, dict] = {
    "cifar10": {"repo": "uoft-cs/cifar10", "pool": "plain_text/train-00000-of-00001.parquet",
                "test": "plain_text/test-00000-of-00001.parquet", "image": "img",
                "label": "label", "side": 32, "names": CIFAR10_LABELS},
    "cifar100": {"repo": "uoft-cs/cifar100", "pool": "cifar100/train-00000-of-00001.parquet",
                 "test": "cifar100/test-00000-of-00001.parquet", "image": "img",
                 "label": "fine_label", "side": 32, "names": CIFAR100_LABELS},
    "tiny-imagenet": {"repo": "zh-plus/tiny-imagenet",
                      "pool": "data/train-00000-of-00001-1359597a978bc4fa.parquet",
                      "test": "data/valid-00000-of-00001-70d52db3c749a935.parquet",
                      "image": "image", "label": "label", "side": 64,
                      "names": TINY_IMAGENET_LABELS},
}


def _split(task: str, which: str) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    entry = HUB_IMAGE_TASKS[task]
    what = f"task {task}: {entry['repo']}/{entry[which]}"
    table = pq.read_table(hub_dataset_file(task, entry["repo"], entry[which]),
                          columns=[entry["image"], entry["label"]])
    labels = table.column(entry["label"]).to_numpy().astype(np.int64)
    if labels.size and not 0 <= labels.min() <= labels.max() < len(entry["names"]):
        raise SourceError(f"{what}: labels outside 0..{len(entry['names']) - 1}")
    blobs = table.column(entry["image"]).combine_chunks().field("bytes").to_pylist()
    images = decode_images(blobs, what, entry["side"], resize=False,
                           fix="the cached file is not the expected one")
    return images, labels


def load_hub_task(name: str) -> ImageData:
    """All images of a hub task: the train split is the pool that `data.split_indices` splits,
    the official test split (Tiny-ImageNet's valid) is kept apart as the fixed test set."""
    if name not in HUB_IMAGE_TASKS:
        raise SourceError(f"hub image task {name!r} is unknown "
                          f"(known: {', '.join(HUB_IMAGE_TASKS)})")
    images, labels = _split(name, "pool")
    return ImageData(images, labels, list(HUB_IMAGE_TASKS[name]["names"]),
                     fixed_test=_split(name, "test"))
