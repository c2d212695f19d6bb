"""Benchmark: ``ortprep convert --style both --type-reduction`` vs ORT's converter.

Usage: python benchmarks/bench_convert.py [--runs 5] [--folder fixtures|real]

``fixtures`` (default): the bundled example plus five small test fixtures; process startup is most
of the time. ``real``: four real models, the bundled example plus the three PP-OCRv4 models
(det 4.7 MB, rec 10.9 MB, cls 0.6 MB, Apache-2.0) that the ``rapidocr-onnxruntime`` wheel ships;
the wheel is fetched once from the package index with ``pip download --no-deps`` into
``~/.cache/ortprep-bench``. Both tools convert with the same options (both styles, type
reduction, target arm), as child processes, alternating; then ortprep again with verification
on, to report what verification costs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import measure, python


def make_folder(folder: Path) -> None:
    from models import attention_block, conv_bn_relu, dynamic_cnn, if_subgraph, qdq_cnn, save
    from ortprep.core.inputs import example_model

    shutil.copy(example_model(), folder / "text_orientation.onnx")
    save(conv_bn_relu(channels=32, size=64), folder / "cnn.onnx")
    save(qdq_cnn(), folder / "qdq.onnx")
    save(dynamic_cnn(), folder / "dyn.onnx")
    save(if_subgraph(), folder / "nested" / "if.onnx")
    save(attention_block(seq=64, hidden=128), folder / "attention.onnx")


REAL_WHEEL = "rapidocr-onnxruntime==1.4.4"


def make_real_folder(folder: Path) -> None:
    """The bundled example plus the PP-OCRv4 models of the rapidocr-onnxruntime wheel."""
    import subprocess
    import zipfile

    from ortprep.core.inputs import example_model

    cache = Path.home() / ".cache" / "ortprep-bench"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("rapidocr_onnxruntime-*.whl"))
    if not wheels:
        subprocess.run(
            [python(), "-m", "pip", "download", "--no-deps", REAL_WHEEL, "-d", str(cache)],
            check=True,
        )
        wheels = sorted(cache.glob("rapidocr_onnxruntime-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in wheel.namelist():
            if name.endswith(".onnx"):
                (folder / Path(name).name).write_bytes(wheel.read(name))
    shutil.copy(example_model(), folder / "text_orientation.onnx")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder", choices=("fixtures", "real"), default="fixtures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        models.mkdir()
        (make_real_folder if args.folder == "real" else make_folder)(models)
        print(
            f"{args.folder}: "
            + ", ".join(
                f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(models.rglob("*.onnx"))
            )
        )
        results: dict[str, list[tuple[float, float, int]]] = {
            "ours": [],
            "theirs": [],
            "verified": [],
        }
        for i in range(args.runs):
            copy = root / f"copy{i}"  # ORT's converter writes a temp folder beside the models
            shutil.copytree(models, copy)
            results["theirs"].append(
                measure(
                    [
                        python(),
                        "-m",
                        "onnxruntime.tools.convert_onnx_models_to_ort",
                        str(copy),
                        "--output_dir",
                        str(root / f"theirs{i}"),
                        "--enable_type_reduction",
                        "--target_platform",
                        "arm",
                    ]
                )
            )
            ours = [
                python(),
                "-m",
                "ortprep",
                "convert",
                str(models),
                "--style",
                "both",
                "--type-reduction",
            ]
            results["ours"].append(measure([*ours, "-o", str(root / f"ours{i}"), "--no-verify"]))
            results["verified"].append(measure([*ours, "-o", str(root / f"ver{i}")]))
            print(
                f"run {i + 1}: "
                + " | ".join(
                    f"{k} {v[-1][0]:.2f} s {v[-1][1]:.0f} MB exit {v[-1][2]}"
                    for k, v in results.items()
                )
            )
        med = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
        print(
            f"\nmedian wall: ortprep --no-verify {med['ours']:.2f} s, ORT's converter "
            f"{med['theirs']:.2f} s (ratio {med['ours'] / med['theirs']:.2f}); with "
            f"verification {med['verified']:.2f} s (+{med['verified'] - med['ours']:.2f} s)"
        )


if __name__ == "__main__":
    main()
