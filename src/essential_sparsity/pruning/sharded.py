"""Global OMP over a sharded safetensors checkpoint, one tensor in memory at a time.

`masks.omp_global` needs every in-scope matrix in memory, and a 7B or 13B model in fp32 is larger
than the memory of many machines that must prune it. The global threshold needs no more than two
streamed passes over the magnitudes (the radix select of `masks.cut_points`), and a mask needs one
matrix plus the count of ties each cut has still to prune, so this module feeds the same engine
from the shard files. The masks are identical to `omp_global` on the in-scope tensors loaded in
the order of `scope_tensors`. Peak memory is one source tensor plus one shard's mask at one
sparsity (mask files are written whole); the price is reading the checkpoint 2 + (number of
sparsities) times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..config.params import format_sparsity
from ..records.io import ArtefactError, read_json, write_json, write_tensors
from .masks import KeyChunks, cut_points, load_mask, magnitude_keys, matrix_masks, n_pruned

INDEX = "index.json"

Scope = dict[str, tuple[Path, torch.Size]]


def _open(shard: Path):
    try:
        return safe_open(str(shard), framework="pt")
    except (SafetensorError, OSError) as exc:
        raise ArtefactError(f"{shard}: not a readable safetensors shard ({exc}); download the "
                            f"checkpoint again") from exc


def scope_tensors(shards: list[Path], is_in_scope: Callable[[str], bool]) -> Scope:
    """The in-scope tensors of a checkpoint, from the shard headers only, mapped to (shard, shape).

    The order is the OMP position order that breaks ties: shards as given, then names sorted
    within each shard. Pass the shards in the same order for masks that can be compared."""
    seen: dict[str, Path] = {}
    scope: Scope = {}
    for shard in shards:
        with _open(shard) as handle:
            for name in sorted(handle.keys()):
                if name in seen:
                    raise ArtefactError(f"{name} is in both {seen[name]} and {shard}: pass each "
                                        f"shard of one checkpoint once")
                seen[name] = shard
                if is_in_scope(name):
                    scope[name] = (shard, torch.Size(handle.get_slice(name).get_shape()))
    return scope


def _read_tensor(shard: Path, name: str) -> torch.Tensor:
    with _open(shard) as handle:
        return handle.get_tensor(name)


def _lazy_keys(scope: Scope) -> KeyChunks:
    """The keys of `masks.magnitude_keys`, each tensor read from its shard when its first chunk
    is asked for and released when its last is consumed."""
    def chunks(name: str) -> Iterator[torch.Tensor]:
        weight = _read_tensor(scope[name][0], name)
        yield from magnitude_keys({name: weight})(name)
    return chunks


def omp_global_sharded(shards: list[Path], is_in_scope: Callable[[str], bool],
                       sparsities: list[float], out_dir: Path) -> dict[float, Path]:
    """`omp_global` over the in-scope tensors of `shards` without loading the model: for each
    sparsity, out_dir/<sparsity>/ holds one bool mask shard per input shard that has in-scope
    tensors (same file and tensor names) and an index.json. Returns each sparsity's directory."""
    _check_file_names(shards)
    scope = scope_tensors(shards, is_in_scope)
    if not scope:
        where = shards[0].parent if shards else "(no shard given)"
        raise ArtefactError(f"{where}: no tensor of the checkpoint is in the pruning scope; "
                            f"check the scope components against its tensor names")
    if len({format_sparsity(s) for s in set(sparsities)}) < len(set(sparsities)):
        raise ValueError(f"sparsities {sparsities} share a directory name; give each at most "
                         f"6 significant digits")
    shapes = {name: shape for name, (_, shape) in scope.items()}
    counts = {s: n_pruned(s, sum(shape.numel() for shape in shapes.values())) for s in sparsities}
    keys = _lazy_keys(scope)
    cuts = cut_points(shapes, keys, list(counts.values()))
    directories = {}
    for sparsity, cut in zip(counts, cuts, strict=True):
        directories[sparsity] = out_dir / format_sparsity(sparsity)
        _write_level(directories[sparsity], scope, keys, cut)
    return directories


def _check_file_names(shards: list[Path]) -> None:
    """Mask shards take their shard's file name, so two shards may not share one."""
    first: dict[str, Path] = {}
    for shard in shards:
        other = first.setdefault(shard.name, shard)
        if other != shard:
            raise ArtefactError(f"{shard} and {other} share a file name, so their masks would "
                                f"overwrite each other: pass the shards of one checkpoint")


def _by_shard(scope: Scope) -> dict[Path, list[str]]:
    grouped: dict[Path, list[str]] = {}
    for name, (shard, _) in scope.items():
        grouped.setdefault(shard, []).append(name)
    return grouped


def _write_level(directory: Path, scope: Scope, keys: KeyChunks, cut: tuple[int, int]) -> None:
    """One sparsity's mask shard by shard: only one shard's mask is held, and the cut's remaining
    ties carry from one tensor to the next as they would through the in-memory dict."""
    ties = [cut[1]]
    pruned = 0
    entries = []
    for shard, names in _by_shard(scope).items():
        mask = {name: matrix_masks(scope[name][1], keys(name), [cut], ties)[0] for name in names}
        pruned += sum(int((~keep).sum()) for keep in mask.values())
        write_tensors(directory / shard.name, mask)
        entries.append({"file": shard.name, "tensors": names})
    total = sum(shape.numel() for _, shape in scope.values())
    write_json(directory / INDEX, {"weights": total, "pruned": pruned,
                                   "sparsity": pruned / total, "shards": entries})


def load_sharded_mask(directory: Path) -> dict[str, torch.Tensor]:
    """One sparsity's mask merged from its shards in scope order (the whole mask in memory: for
    small models and tests)."""
    mask = {}
    for entry in read_json(directory / INDEX)["shards"]:
        shard = load_mask(directory / entry["file"])
        if set(shard) != set(entry["tensors"]):
            raise ArtefactError(f"{directory / entry['file']}: tensors differ from {INDEX}; "
                                f"delete {directory} and rebuild it")
        mask.update((name, shard[name]) for name in entry["tensors"])
    return mask
