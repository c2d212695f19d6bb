"""Benchmark: ``ortprep convert --style both --type-reduction`` vs ORT's converter.

Usage: python benchmarks/bench_convert.py [--runs 5] [--folder fixtures|real|bert|bert-external]

``fixtures`` (default): the bundled example plus five small test fixtures; process startup is most
of the time. ``real``: four real models, the bundled example plus the three PP-OCRv4 models
(det 4.7 MB, rec 10.9 MB, cls 0.6 MB, Apache-2.0) that the ``rapidocr-onnxruntime`` wheel ships;
the wheel is fetched once from the package index with ``pip download --no-deps`` into
``~/.cache/ortprep-bench``. ``bert`` / ``bert-external``: the BERT-base-sized encoder of
benchmarks/transformer.py (110 M parameters, 436 MB), weights inline or in external data.
Both tools convert with the same options (both styles, type reduction, target arm), as child
processes, alternating; then ortprep again with verification on, to report what verification
costs. Each run reports wall time and the peak of the RSS summed over the process tree
(benchmarks/_measure.py); the summary gives medians. On a shared machine the figures are noisy:
compare medians of runs taken together, never figures from different sittings.
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

from _measure import Run, measure, python


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


def make_bert_folder(folder: Path, external: bool) -> None:
    from transformer import build

    build(folder / "bert.onnx", external=external)


FOLDERS = {
    "fixtures": make_folder,
    "real": make_real_folder,
    "bert": lambda folder: make_bert_folder(folder, external=False),
    "bert-external": lambda folder: make_bert_folder(folder, external=True),
}


def _mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder", choices=tuple(FOLDERS), default="fixtures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        models.mkdir()
        FOLDERS[args.folder](models)
        print(
            f"{args.folder}: "
            + ", ".join(
                f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(models.rglob("*.onnx"))
            )
            + f" ({_mb(models):.0f} MB with external data)"
        )
        results: dict[str, list[Run]] = {"theirs": [], "ours": [], "verified": []}
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
            shutil.rmtree(copy)
            shutil.rmtree(root / f"theirs{i}", ignore_errors=True)
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
            shutil.rmtree(root / f"ours{i}", ignore_errors=True)
            results["verified"].append(measure([*ours, "-o", str(root / f"ver{i}")]))
            shutil.rmtree(root / f"ver{i}", ignore_errors=True)
            print(
                f"run {i + 1}: "
                + " | ".join(
                    f"{k} {v[-1].wall:.2f} s {v[-1].tree_peak or v[-1].peak:.0f} MB exit "
                    f"{v[-1].code}"
                    for k, v in results.items()
                )
            )
        wall = {k: statistics.median(r.wall for r in v) for k, v in results.items()}
        peak = {k: statistics.median(r.tree_peak or r.peak for r in v) for k, v in results.items()}
        size = _mb(models)
        print(f"\nmedians of {args.runs} alternating runs (wall, peak RSS of the process tree):")
        for key, label in (
            ("theirs", "ORT's converter"),
            ("ours", "ortprep --no-verify"),
            ("verified", "ortprep (verification on)"),
        ):
            print(
                f"  {label:28s} {wall[key]:7.2f} s  {peak[key]:6.0f} MB "
                f"({peak[key] / size:.1f}x the models)"
            )
        print(
            f"ortprep / ORT's converter: wall {wall['ours'] / wall['theirs']:.2f} "
            f"(verified {wall['verified'] / wall['theirs']:.2f}), peak "
            f"{peak['ours'] / peak['theirs']:.2f} "
            f"(verified {peak['verified'] / peak['theirs']:.2f})"
        )


if __name__ == "__main__":
    main()
