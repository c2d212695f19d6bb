"""What ``check`` found, drawn where engineers look at graphs.

- :mod:`.model_explorer`: per-EP node data for Google's Model Explorer (with the
  ``model-explorer-onnx`` adapter), keyed to the weightless analysed graph written beside it;
- :mod:`.netron`: an annotated copy of that graph (each node's EP, partition and reason in its
  ``doc_string`` and ``metadata_props``) that Netron shows as it is;
- :mod:`.nodes`: which check result belongs to which node of the analysed graph.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ortprep.core.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from ortprep.stages.check import CheckOptions, CheckResult


def check_with_overlays(
    path: Path,
    options: CheckOptions,
    overlay_dir: Path | None,
    annotate: Path | None = None,
    progress: ProgressFn = no_progress,
) -> CheckResult:
    """``check`` that also writes, for ``path``, the weightless analysed graph and the Model
    Explorer node data keyed to it into ``overlay_dir`` (``<file name>.analyzed.onnx``,
    ``<file name>.<ep>.node_data.json``), and the Netron-annotated copy to ``annotate`` (a file,
    or a folder: ``<file name>.annotated.onnx``). The result lists the files in ``written``."""
    import tempfile

    from ortprep.overlays import model_explorer, netron
    from ortprep.stages import check

    filename = path.name
    with tempfile.TemporaryDirectory(prefix="ortprep-overlays-") as tmp:
        folder = overlay_dir if overlay_dir is not None else Path(tmp)
        analyzed = folder / model_explorer.analyzed_name(filename)
        result = check.run(path, dataclasses.replace(options, save_analyzed=analyzed), progress)
        written: list[Path] = []
        if overlay_dir is not None:
            written += [analyzed, *model_explorer.write(result, analyzed, overlay_dir, filename)]
        if annotate is not None:
            target = annotate / f"{filename}.annotated.onnx" if annotate.is_dir() else annotate
            written.append(netron.write(result, analyzed, target))
    return dataclasses.replace(result, written=tuple(str(p) for p in written))
