"""Masks: which weights a method removes (one-shot magnitude, random, N:M, lottery tickets,
Wanda and SparseGPT), over which matrices (the scope), and mask files."""
