"""Build a tiny Hugging Face hub cache, laid out as huggingface_hub writes it, at test time.

    <cache>/models--google-bert--bert-base-uncased/refs/main         -> commit hash
    <cache>/models--google-bert--bert-base-uncased/blobs/<sha256>    file contents
    <cache>/models--google-bert--bert-base-uncased/snapshots/<hash>/config.json -> ../../blobs/..
    <cache>/datasets--nyu-mll--glue/snapshots/<hash>/rte/train-00000-of-00001.parquet -> ...
    <cache>/datasets--bookcorpus--bookcorpus/refs/refs/convert/parquet  -> commit hash (a hub ref
        is stored under refs/ by its full name)

Nothing here is downloaded or committed: a 2-layer BERT with a 60-word vocabulary and a few dozen
GLUE-shaped rows per split are made from code, so the paper profile's loaders run offline against
the very paths and file names they read on the hub.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd

BERT_REPO = "google-bert/bert-base-uncased"
GLUE_REPO = "nyu-mll/glue"
MODEL_COMMIT = "86b5e0934494bd15c9632b12f734a8a67f723594"
GLUE_COMMIT = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "the", "a", "an", "is", "was", "not", "no", "good", "bad", "movie", "film", "great", "awful",
    "plot", "actor", "cat", "dog", "sat", "on", "mat", "man", "woman", "city", "river", "sun",
    "rain", "it", "this", "that", "and", "but", "very", "so", "of", "in", "to", "he", "she",
    "they", "likes", "hates", "runs", "walks", "red", "blue", "big", "small", "old", "new",
    "happy", "sad", "day", "night",
]
VOCAB = [*SPECIAL, *WORDS, "##s", "##ed", "##ing", ".", ",", "!"]

# GLUE tasks: columns in the hub's parquet files, the splits written with their row counts, and
# the class names the files declare (the label column is a `datasets` ClassLabel, as on the hub).
GLUE_FIXTURE = {
    "rte": (("sentence1", "sentence2"), {"train": 40, "validation": 24, "test": 12},
            ["entailment", "not_entailment"]),
    "sst2": (("sentence",), {"train": 40, "validation": 24, "test": 12},
             ["negative", "positive"]),
    "mnli": (("premise", "hypothesis"), {"train": 45, "validation_matched": 30},
             ["entailment", "neutral", "contradiction"]),
}


def repo_dir(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    return Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"


def add_snapshot(cache: Path, repo_id: str, repo_type: str, commit: str, files: Path,
                 revision: str = "main") -> Path:
    """Move every file under `files` into the cache as a blob linked from snapshots/<commit>, and
    record `revision` -> commit as huggingface_hub does: in the file refs/<revision> (so the hub's
    ref "refs/convert/parquet" is stored as refs/refs/convert/parquet)."""
    repo = repo_dir(cache, repo_id, repo_type)
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for source in sorted(p for p in Path(files).rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(source.read_bytes()).hexdigest()
        shutil.move(source, blob)
        link = snapshot / source.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    ref = repo / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)
    return snapshot


def tiny_bert(seed: int = 0):
    """A BERT pre-training model (encoder under `bert.`, like the hub checkpoint) with random
    weights; its encoder is `model.bert`."""
    import torch
    from transformers import BertConfig, BertForPreTraining

    config = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        architectures=["BertForMaskedLM"])
    torch.manual_seed(seed)
    return BertForPreTraining(config).eval()


def tiny_tokenizer(vocab_file: Path, **special: str):
    from transformers import BertTokenizerFast

    words = Path(vocab_file).read_text().splitlines()
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True,
                             **special)


def write_model_snapshot(cache: Path, staging: Path, repo_id: str, model, **special: str):
    """`model` and the fixture's word-piece tokenizer as the hub's `repo_id`; returns the model."""
    staging.mkdir(parents=True)
    (staging / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    model.save_pretrained(staging)
    tiny_tokenizer(staging / "vocab.txt", **special).save_pretrained(staging)
    add_snapshot(cache, repo_id, "model", MODEL_COMMIT, staging)
    return model


def write_bert_snapshot(cache: Path, staging: Path):
    """The fixture's google-bert/bert-base-uncased; returns the model that was saved."""
    return write_model_snapshot(cache, staging, BERT_REPO, tiny_bert())


def sentence(i: int, j: int) -> str:
    return " ".join(WORDS[(i * 7 + k * j + j) % len(WORDS)] for k in range(3 + i % 4)) + " ."


def glue_frame(columns: tuple[str, ...], rows: int, n_labels: int, test: bool,
               start: int = 0) -> pd.DataFrame:
    """`rows` examples numbered from `start` (so no two splits share a text); labels cycle over
    the classes, -1 on GLUE's hidden test split."""
    data = {col: [f"{sentence(i, j + 1)} {i}" for i in range(start, start + rows)]
            for j, col in enumerate(columns)}
    data["label"] = [-1 if test else i % n_labels for i in range(rows)]
    data["idx"] = list(range(rows))
    return pd.DataFrame(data).astype({"label": "int64", "idx": "int32"})


def write_glue_snapshot(cache: Path, staging: Path, tasks=tuple(GLUE_FIXTURE)) -> None:
    import datasets

    for task in tasks:
        columns, splits, names = GLUE_FIXTURE[task]
        features = datasets.Features({**{c: datasets.Value("string") for c in columns},
                                      "label": datasets.ClassLabel(names=names),
                                      "idx": datasets.Value("int32")})
        (staging / task).mkdir(parents=True)
        start = 0
        for split, rows in splits.items():
            frame = glue_frame(columns, rows, len(names), test=split == "test", start=start)
            start += rows
            datasets.Dataset.from_pandas(frame, features=features, preserve_index=False
                                         ).to_parquet(staging / task
                                                      / f"{split}-00000-of-00001.parquet")
    add_snapshot(cache, GLUE_REPO, "dataset", GLUE_COMMIT, staging)


def build_hub_cache(root: Path):
    """A hub cache under root/hub with the fixture BERT and GLUE; returns (cache, saved model)."""
    cache = Path(root) / "hub"
    model = write_bert_snapshot(cache, Path(root) / "staging-model")
    write_glue_snapshot(cache, Path(root) / "staging-glue")
    return cache, model


VICUNA_REPO = "lmsys/vicuna-7b-v1.3"


def tiny_llama(seed: int = 0, vocab_size: int = len(VOCAB)):
    """A 2-block Llama causal LM with random weights (the architecture of Vicuna and SmolLM2)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, tie_word_embeddings=False)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def write_vicuna_snapshot(cache: Path, staging: Path):
    """The fixture's lmsys/vicuna-7b-v1.3: a tiny Llama whose tokenizer, like Llama's, has
    begin- and end-of-text tokens; returns the model that was saved."""
    return write_model_snapshot(cache, staging, VICUNA_REPO, tiny_llama(), bos_token="[CLS]",
                                eos_token="[SEP]")


MMLU_REPO = "cais/mmlu"
MMLU_SPLITS = {"test": 2, "validation": 1, "dev": 5}


def write_mmlu_snapshot(cache: Path, staging: Path, subjects: list[str]) -> None:
    """cais/mmlu as the hub stores it: a parquet file per subject and split, and the README's
    YAML that names each subject's files (what `datasets` reads to find a config)."""
    card = ["---", "configs:"]
    for subject in subjects:
        (staging / subject).mkdir(parents=True)
        card += [f"- config_name: {subject}", "  data_files:"]
        for split, rows in MMLU_SPLITS.items():
            questions = [f"{sentence(i, 2)} {subject} ?" for i in range(rows)]
            frame = pd.DataFrame({"question": questions, "subject": subject,
                                  "choices": [[WORDS[(i + k) % len(WORDS)] for k in range(4)]
                                              for i in range(rows)],
                                  "answer": [i % 4 for i in range(rows)]})
            name = f"{subject}/{split}-00000-of-00001.parquet"
            frame.to_parquet(staging / name, index=False)
            card += [f"  - split: {split}", f"    path: {name}"]
    (staging / "README.md").write_text("\n".join([*card, "---", ""]))
    add_snapshot(cache, MMLU_REPO, "dataset", GLUE_COMMIT, staging)


BOOKCORPUS_REPO = "bookcorpus/bookcorpus"
BOOKCORPUS_REVISION = "refs/convert/parquet"
BOOKCORPUS_COMMIT = "3c1a1a5a2f1e4b7d8e9f0a1b2c3d4e5f60718293"


def write_bookcorpus_snapshot(cache: Path, sentences: list[str]) -> None:
    """bookcorpus/bookcorpus as the hub's parquet conversion (revision refs/convert/parquet):
    the sentences, one per row of a `text` column, split across plain_text/train/0000.parquet
    and 0001.parquet (the first file gets the first half, rounded up)."""
    staging = Path(cache).parent / "staging-bookcorpus"
    (staging / "plain_text" / "train").mkdir(parents=True)
    half = (len(sentences) + 1) // 2
    for name, part in (("0000", sentences[:half]), ("0001", sentences[half:])):
        pd.DataFrame({"text": pd.Series(part, dtype="object")}).to_parquet(
            staging / "plain_text" / "train" / f"{name}.parquet", index=False)
    add_snapshot(cache, BOOKCORPUS_REPO, "dataset", BOOKCORPUS_COMMIT, staging,
                 revision=BOOKCORPUS_REVISION)


IMAGE_COMMIT = "5d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f901"
# task -> (repo, image column, label column, image side, classes, format,
#          {file in the repo: rows}); the first file is the pool, the second the fixed test split.
IMAGE_FIXTURE = {
    "cifar10": ("uoft-cs/cifar10", "img", "label", 32, 10, "PNG",
                {"plain_text/train-00000-of-00001.parquet": 30,
                 "plain_text/test-00000-of-00001.parquet": 12}),
    "cifar100": ("uoft-cs/cifar100", "img", "fine_label", 32, 100, "PNG",
                 {"cifar100/train-00000-of-00001.parquet": 30,
                  "cifar100/test-00000-of-00001.parquet": 12}),
    "tiny-imagenet": ("zh-plus/tiny-imagenet", "image", "label", 64, 200, "JPEG",
                      {"data/train-00000-of-00001-1359597a978bc4fa.parquet": 24,
                       "data/valid-00000-of-00001-70d52db3c749a935.parquet": 10}),
}
GREY_ROW = 3  # row of every Tiny-ImageNet file stored as a greyscale ('L') JPEG


def fixture_image(task: str, file: str, row: int, side: int | None = None):
    """The pixels written for one row, uint8 [side, side, 3] or [side, side] for a grey row. PNG
    rows are noise (lossless, so read back exactly); JPEG rows are smooth gradients, which JPEG
    keeps within a few levels."""
    import zlib

    import numpy as np

    _, _, _, default_side, _, fmt, _ = IMAGE_FIXTURE[task]
    side = side or default_side
    rng = np.random.default_rng(zlib.crc32(f"{task}/{file}/{row}".encode()))
    if fmt == "PNG":
        return rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    base, dx, dy = rng.uniform(60, 190, 3), rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    pixels = np.rint(base + x[..., None] * dx + y[..., None] * dy).clip(0, 255).astype(np.uint8)
    return pixels[..., 0] if row == GREY_ROW else pixels


def fixture_labels(task: str, rows: int) -> list[int]:
    """Labels that stride over the classes, so a few dozen rows cover several of them."""
    classes = IMAGE_FIXTURE[task][4]
    return [(7 * i + 3) % classes for i in range(rows)]


def write_image_snapshot(cache: Path, staging: Path, task: str, side: int | None = None) -> None:
    """One image task's repo as the hub stores it: parquet files whose image column holds
    {bytes, path} structs of encoded images. `side` overrides the image size (to test that a
    wrongly sized file is refused)."""
    import io

    from PIL import Image

    repo, image_col, label_col, _, _, fmt, files = IMAGE_FIXTURE[task]
    for file, rows in files.items():
        images = []
        for row in range(rows):
            buffer = io.BytesIO()
            Image.fromarray(fixture_image(task, file, row, side)).save(buffer, format=fmt,
                                                                       quality=95)
            images.append({"bytes": buffer.getvalue(), "path": f"{row}.{fmt.lower()}"})
        frame = pd.DataFrame({image_col: images, label_col: fixture_labels(task, rows)})
        if task == "cifar100":  # the hub's file also holds the 20 superclasses
            frame["coarse_label"] = [i % 20 for i in range(rows)]
        (staging / file).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(staging / file, index=False)
    add_snapshot(cache, repo, "dataset", IMAGE_COMMIT, staging)


def write_image_snapshots(cache: Path, staging: Path) -> None:
    """CIFAR-10, CIFAR-100 and Tiny-ImageNet, each in its own hub repo."""
    for task in IMAGE_FIXTURE:
        write_image_snapshot(cache, staging / task, task)


MATH_COMMIT = "7e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b"
MATH_REVISION = "refs/convert/parquet"


def calc_chain(*steps: tuple[str, str], result: str) -> str:
    """A Calc-X `chain`: each (calculator input, output) step, then the result."""
    blocks = [f'<gadget id="calculator">{inputs}</gadget>\n<output>{output}</output>'
              for inputs, output in steps]
    return "\n\n".join([*blocks, f"<result>{result}</result>"])


def _mawps(question: str, chain: str, result: float, equation: str, expression: str) -> dict:
    return {"question": question, "chain": chain, "result": f"{result:g}", "result_float": result,
            "equation": equation, "expression": expression}


def _asdiv(question: str, chain: str, result: float) -> dict:
    return {"question": question, "chain": chain, "result": f"{result:g}", "result_float": result,
            "result_unit": "things", "grade": 3, "source_question": "http://www.k5learning.com"}


def _svamp(question: str, chain: str, result: float, equation: str) -> dict:
    return {"question": question, "chain": chain, "result": f"{result:g}", "result_float": result,
            "equation": equation, "problem_type": "Common-Division"}


# repo -> {file: rows}, in the columns and formats of the hub's Calc-X parquet conversion (an `id`
# column is added when written). MAWPS's `equation` is the raw one (`x=...`, or not solved for x)
# and `expression` its solved form; ASDiv-A has only the calculator chain, and its last problem
# uses floor(), outside the grammar: it must be dropped.
MATH_FIXTURE = {
    "MU-NLPC/Calc-mawps": {
        "default/train/0000.parquet": [
            _mawps("Wendy picked 45 flowers. She was making bouquets with 5 flowers in each one. "
                   "If 35 of the flowers wilted, how many bouquets could she still make?",
                   calc_chain(("45 - 35", "10"), ("10 / 5", "2"), result="2"), 2.0,
                   "x=((45.0-35.0)/5.0)", "((45.0-35.0)/5.0)"),
            _mawps("Mike has 35 books in his library . He bought several books at a yard sale. "
                   "There are now 56 books in his library. How many books did he buy?",
                   calc_chain(("56 - 35", "21"), result="21"), 21.0, "35 + x = 56", "56-35"),
        ],
        "default/validation/0000.parquet": [
            _mawps("The difference between 2 times a number and -8 is -12. Find the number.",
                   calc_chain(("(-12) + (-8)", "-20"), ("(-20) / 2", "-10"), result="-10"),
                   -10.0, "(2.0*x)-(-8.0)=(-12.0)", "((-12.0) + (-8.0)) / 2.0"),
        ],
        "default/test/0000.parquet": [
            _mawps("Dan found 56 seashells on the beach, he gave Jessica some of his seashells. "
                   "He has 22 seashells left. How many did he give to Jessica?",
                   calc_chain(("56 - 22", "34"), result="34"), 34.0, "56-x=22", "56-22"),
            _mawps("On Friday, Fred paid $5.92 each on 2 tickets and borrowed a movie for $6.79. "
                   "He paid with a $20 bill. How much change did he receive?",
                   calc_chain(("2 * 5.92", "11.84"), ("20 - 11.84 - 6.79", "1.37"),
                              result="1.37"), 1.37, "(2*5.92)+6.79+x=20", "20-(2*5.92)-6.79"),
        ],
    },
    "MU-NLPC/Calc-asdiv_a": {
        "default/test/0000.parquet": [
            _asdiv("Seven red apples and two green apples are in the basket. How many apples are "
                   "in the basket?", calc_chain(("7 + 2", "9"), result="9"), 9.0),
            _asdiv("A vase can hold nine flowers. If you had four carnations and twenty-three "
                   "roses, how many vases would you need to hold the flowers?",
                   calc_chain(("4 + 23", "27"), ("27 / 9", "3"), result="3"), 3.0),
            _asdiv("There are 3,300 bananas in Janice's banana collection. If the bananas are "
                   "organized into 75 groups, how big is each group?",
                   calc_chain(("3_300 / 75", "44"), result="44"), 44.0),
            _asdiv("A baker splits 10 kilograms of flour equally into 4 bags. How much flour is "
                   "in 2 bags?",
                   calc_chain(("10 / 4", "5/2 = around 2.5"), ("(5/2) * 2", "5"), result="5"),
                   5.0),
            _asdiv("Mrs. Smith gave 53 strawberries to 8 girls equally. How many strawberries "
                   "did each girl get?",
                   calc_chain(("53 / 8", "53/8 = around 6.625"), ("floor(53/8)", "6"),
                              result="6"), 6.0),
        ],
    },
    "MU-NLPC/Calc-svamp": {
        "default/test/0000.parquet": [
            _svamp("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on "
                   "each pack, how much do you have to pay to buy each pack?",
                   calc_chain(("76 - 25", "51"), result="51"), 51.0, "( 76.0 - 25.0 )"),
            _svamp("Paige was helping her mom plant flowers and together they planted 55 seeds. "
                   "They put 15 seeds in each flower bed and only 60 seeds grew into flowers in "
                   "each flower bed, how many flowers did they grow?",
                   calc_chain(("55 / 15", "11/3 = around 3.666667"), ("60 * (11/3)", "220"),
                              result="220"), 220.0, "( 60.0 * ( 55.0 / 15.0 ) )"),
        ],
    },
}


def write_math_snapshots(cache: Path, staging: Path) -> None:
    """Calc-mawps, Calc-asdiv_a and Calc-svamp as their parquet conversions (revision
    refs/convert/parquet): one file per config split, default/<split>/0000.parquet."""
    for repo, files in MATH_FIXTURE.items():
        root = staging / repo.replace("/", "--")
        prefix = repo.removeprefix("MU-NLPC/Calc-")  # ids as in Calc-X: mawps__..., svamp__...
        for name, rows in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            frame = pd.DataFrame(rows)
            frame.insert(0, "id", [f"{prefix}__{name.split('/')[1]}-{i}" for i in range(len(rows))])
            frame.to_parquet(root / name, index=False)
        add_snapshot(cache, repo, "dataset", MATH_COMMIT, root, revision=MATH_REVISION)


def build_cache(tmp_path_factory, name: str, write) -> Path:
    """A fixture cache made by `write(cache, staging)` once per module, read-only after."""
    root = tmp_path_factory.mktemp(name)
    write(root / "hub", root / "staging")
    return root / "hub"


OPT_REPO = "facebook/opt-125m"
OPT_SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3, as in OPT's vocab.json


def opt_tokenizer():
    """OPT's tokenizer in miniature: byte-level BPE over the 256 byte symbols alone (no merges),
    with OPT's special tokens: </s> begins every text and separates a pair, <pad> is id 1."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GPT2Tokenizer

    vocab = {t: i for i, t in enumerate([*OPT_SPECIAL, *sorted(ByteLevel.alphabet())])}
    return GPT2Tokenizer(vocab=vocab, merges=[], bos_token="</s>", eos_token="</s>",
                         unk_token="</s>", pad_token="<pad>", add_bos_token=True)


def tiny_opt(seed: int = 0):
    """A 2-block OPT causal LM with random weights. Its embeddings (8) are narrower than its
    blocks (16), as OPT-350M's are, so it has project_in and project_out (outside the scope)."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    config = OPTConfig(vocab_size=len(OPT_SPECIAL) + 256, hidden_size=16, word_embed_proj_dim=8,
                       num_hidden_layers=2, ffn_dim=32, num_attention_heads=2,
                       max_position_embeddings=96, do_layer_norm_before=False, pad_token_id=1,
                       bos_token_id=2, eos_token_id=2, architectures=["OPTForCausalLM"])
    torch.manual_seed(seed)
    return OPTForCausalLM(config).eval()


def write_opt_snapshot(cache: Path, staging: Path):
    """The fixture's facebook/opt-125m (model and tokenizer); returns the model that was saved."""
    staging.mkdir(parents=True)
    model = tiny_opt()
    model.save_pretrained(staging)
    opt_tokenizer().save_pretrained(staging)
    add_snapshot(cache, OPT_REPO, "model", MODEL_COMMIT, staging)
    return model


SQUAD_REPO = "rajpurkar/squad"
SQUAD_COMMIT = "7b6d24c440a36b6815f21b70d25016731768db1f"
SQUAD_FILES = {"train": "plain_text/train-00000-of-00001.parquet",
               "validation": "plain_text/validation-00000-of-00001.parquet"}
SQUAD_LEAD = "  "  # every third context starts with whitespace, as a few of SQuAD's do


def squad_row(i: int, golds: int) -> dict:
    """Example i: a context of two fixture sentences, a question on it, and `golds` answers
    (training rows have one, validation rows up to three), each two of the context's words
    from word i % 4 on, with its character offset in the context as stored (leading whitespace
    included)."""
    lead = SQUAD_LEAD if i % 3 == 0 else ""
    first, second = f"{sentence(i, 1)} {i}", sentence(i, 2)
    words = first.split()
    at = [i % 4 + k for k in range(golds)]
    texts = [" ".join(words[k:k + 2]) for k in at]
    starts = [len(lead) + len(" ".join(words[:k])) + (k > 0) for k in at]
    return {"id": f"q{i}", "title": f"title {i % 4}", "context": f"{lead}{first} {second}",
            "question": f"which words begin text {i} ?",
            "answers": {"text": texts, "answer_start": starts}}


def write_squad_snapshot(cache: Path, staging: Path, rows: dict[str, int] | None = None) -> None:
    """rajpurkar/squad as the hub stores it: one parquet file per split of the plain_text
    config, `answers` a struct of lists (text, answer_start)."""
    start = 0
    for split, count in (rows or {"train": 40, "validation": 12}).items():
        golds = 1 if split == "train" else 3
        frame = pd.DataFrame([squad_row(i, 1 + i % golds) for i in range(start, start + count)])
        start += count
        (staging / SQUAD_FILES[split]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(staging / SQUAD_FILES[split], index=False)
    add_snapshot(cache, SQUAD_REPO, "dataset", SQUAD_COMMIT, staging)


def write_opt_and_squad_snapshots(cache: Path, staging: Path) -> None:
    """facebook/opt-125m and rajpurkar/squad in one cache."""
    write_opt_snapshot(cache, staging / "opt")
    write_squad_snapshot(cache, staging / "squad")
