"""The `essential-sparsity` command line the rules call, the warm worker that runs its tensor
jobs, and the build's progress line."""
