"""Reproducible pipeline for "The Emergence of Essential Sparsity in Large Pre-trained Models"."""

__version__ = "0.1.0"
