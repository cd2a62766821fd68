"""Artefacts and what vouches for them: atomic file I/O, provenance records, the audit, the
report page, rendered notebooks and the README's headline table."""
