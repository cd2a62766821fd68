"""SparseGPT as the reference implementation computes it (IST-DASLab/sparsegpt, `sparsegpt.py`
with `opt.py`'s calibration, one sequence per `add_batch`), transcribed line by line below, on a
layer whose inputs include dead ReLU units (always zero, as in OPT's fc2): there the Hessian's
scale decides the damping, since the dead columns' diagonal is set to 1 before `percdamp` is taken
relative to the mean diagonal. The masks must be equal and the updated weights agree."""

from __future__ import annotations

import math

import pytest
import torch

from essential_sparsity.pruning import calibrated

ROWS, COLUMNS, BLOCK, DAMP = 24, 64, 16, 0.01
DEAD = (3, 10, 17, 30, 41, 58)  # at most one per group of 4: N:M never chooses among tied zeros


class ReferenceSparseGPT:
    """The reference's SparseGPT class for an nn.Linear, without quantization or timing. One
    change, for unstructured sparsity only: each block prunes the project's exact count (so the
    matrix loses round(s x n) weights) where the reference's `sort(...)[int(numel * s)]`
    threshold prunes one weight more; the rule (the smallest w^2 / [H^-1]_jj^2) is the same."""

    def __init__(self, layer: torch.nn.Linear):
        self.layer = layer
        self.rows, self.columns = layer.weight.shape
        self.H = torch.zeros((self.columns, self.columns))
        self.nsamples = 0

    def add_batch(self, inp: torch.Tensor) -> None:
        if len(inp.shape) == 2:
            inp = inp.unsqueeze(0)
        tmp = inp.shape[0]
        inp = inp.reshape((-1, inp.shape[-1])).t()
        self.H *= self.nsamples / (self.nsamples + tmp)
        self.nsamples += tmp
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())

    def fasterprune(self, sparsity, prunen=0, prunem=0, blocksize=128, percdamp=0.01,
                    counts=None):
        W = self.layer.weight.data.clone().float()
        H = self.H
        dead = torch.diag(H) == 0
        H[dead, dead] = 1
        W[:, dead] = 0
        damp = percdamp * torch.mean(torch.diag(H))
        diag = torch.arange(self.columns)
        H[diag, diag] += damp
        H = torch.linalg.cholesky(H)
        H = torch.cholesky_inverse(H)
        Hinv = torch.linalg.cholesky(H, upper=True)
        pruned = torch.zeros_like(W, dtype=torch.bool)
        for block, i1 in enumerate(range(0, self.columns, blocksize)):
            i2 = min(i1 + blocksize, self.columns)
            count = i2 - i1
            W1 = W[:, i1:i2].clone()
            Q1 = torch.zeros_like(W1)
            Err1 = torch.zeros_like(W1)
            Hinv1 = Hinv[i1:i2, i1:i2]
            if prunen == 0:
                tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
                thresh = torch.sort(tmp.flatten())[0][counts[block] - 1]
                mask1 = tmp <= thresh
            else:
                mask1 = torch.zeros_like(W1) == 1
            for i in range(count):
                w = W1[:, i]
                d = Hinv1[i, i]
                if prunen != 0 and i % prunem == 0:
                    tmp = W1[:, i:(i + prunem)] ** 2 / (
                        torch.diag(Hinv1)[i:(i + prunem)].reshape((1, -1))) ** 2
                    mask1.scatter_(1, i + torch.topk(tmp, prunen, dim=1, largest=False)[1], True)
                q = w.clone()
                q[mask1[:, i]] = 0
                Q1[:, i] = q
                err1 = (w - q) / d
                W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
                Err1[:, i] = err1
            W[:, i1:i2] = Q1
            pruned[:, i1:i2] = mask1
            W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
        return ~pruned, W


def relu_block() -> torch.nn.Sequential:
    """FFN in, ReLU, FFN out; the units of DEAD never fire (a bias far below their inputs)."""
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Linear(ROWS, COLUMNS), torch.nn.ReLU(),
                                torch.nn.Linear(COLUMNS, ROWS))
    with torch.no_grad():
        block[0].weight.mul_(0.1)  # small activations: H's diagonal well below the dead 1s
        block[0].bias.zero_()
        block[0].bias[list(DEAD)] = -100.0
    return block


@pytest.mark.parametrize(("sparsity", "nm"), [(0.5, (2, 4)), (0.5, None), (0.7, None)])
def test_sparsegpt_masks_equal_the_reference_on_a_layer_with_dead_inputs(sparsity, nm):
    block = relu_block()
    hidden = torch.randn(6, 12, ROWS, generator=torch.Generator().manual_seed(1))
    layer = block[2]
    inputs = block[1](block[0](hidden)).detach()
    dead = (inputs == 0).all(1).all(0)
    assert dead.nonzero().view(-1).tolist() == list(DEAD)
    reference = ReferenceSparseGPT(layer)
    for sequence in inputs:  # opt.py's calibration: one sequence per forward
        reference.add_batch(sequence.unsqueeze(0))

    with torch.no_grad():
        stats = calibrated._input_statistics(block, hidden, {}, {"fc2": layer}, "sparsegpt", 4)
        torch.testing.assert_close(stats["fc2"], reference.H, rtol=1e-5, atol=1e-7)
        keep, weight = calibrated.sparsegpt(layer.weight, stats["fc2"], sparsity, nm, BLOCK,
                                           DAMP)
    counts = calibrated._block_counts(ROWS, COLUMNS, BLOCK, sparsity)
    n, m = nm or (0, 0)
    want_keep, want_weight = reference.fasterprune(sparsity, m - n, m, BLOCK, DAMP, counts)
    assert torch.equal(keep, want_keep)
    torch.testing.assert_close(weight, want_weight, rtol=1e-4, atol=1e-5)
