"""One module per pipeline stage: each reads its inputs, calls the library, writes its outputs
atomically. The Snakemake rules call them through the CLI; tests call them directly. A stage
imports library modules, never another stage."""
