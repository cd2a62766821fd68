"""Training under a fixed mask: sparse fine-tuning, question answering, pre-training from
scratch (BERT, a small ViT with and without labels), and where a job computes."""
