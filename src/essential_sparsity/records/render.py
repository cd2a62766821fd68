"""Execute a figure notebook with papermill and export it to HTML.

The notebook is given temporary output paths; they are renamed onto the real ones only after the
whole notebook ran and its HTML was written, so a failed figure never leaves a stale-looking file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def render_notebook(notebook: str | Path, html: str | Path, outputs: dict[str, str],
                    parameters: dict) -> None:
    html = Path(html)
    staged = {}
    for name, final in outputs.items():
        final_path = Path(final)
        final_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = final_path.with_name(f".{final_path.name}.tmp{final_path.suffix}")
        staged[name] = (final_path, tmp)
    try:
        _execute(notebook, html, staged, parameters)
    finally:
        for _, tmp in staged.values():
            tmp.unlink(missing_ok=True)


def _execute(notebook, html: Path, staged: dict, parameters: dict) -> None:
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    from .provenance import source_date_epoch

    # The kernel inherits it: matplotlib dates PDFs by it rather than by the clock.
    os.environ["SOURCE_DATE_EPOCH"] = str(source_date_epoch())
    with tempfile.TemporaryDirectory() as work:
        executed = Path(work) / Path(notebook).name
        papermill.execute_notebook(
            str(notebook), str(executed), kernel_name="python3", progress_bar=False,
            parameters={**parameters, **{name: str(tmp) for name, (_, tmp) in staged.items()}})
        body, _ = HTMLExporter().from_notebook_node(_stable_ids(nbformat.read(executed,
                                                                              as_version=4)))
        html.parent.mkdir(parents=True, exist_ok=True)
        tmp_html = html.with_name(f".{html.name}.tmp")
        tmp_html.write_text(body)
        for final_path, tmp in staged.values():
            if not tmp.is_file():
                raise RuntimeError(f"{notebook} did not write its output {final_path}")
        for final_path, tmp in staged.values():
            os.replace(tmp, final_path)
        os.replace(tmp_html, html)


def _stable_ids(notebook):
    """papermill gives the cell it injects a random id, which the HTML carries: one fixed id
    makes two renderings of the same notebook and tables the same bytes."""
    for cell in notebook.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["id"] = "injected-parameters"
    return notebook
