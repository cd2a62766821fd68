"""From runs to findings: tidy tables, drops from dense, essential sparsity, the causal-LM
scores, the paper's claims checked, and two builds compared."""
