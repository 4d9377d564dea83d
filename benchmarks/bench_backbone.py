"""Benchmark the SAM backbones: encode and decode speed, memory, and bf16 agreement.

Prints the environment, then one markdown table. Run from the repository root::

    python benchmarks/bench_backbone.py --n 5 --threads 2

Images come from ``--data`` (default: the shared ``lgg_mri_dev/images`` folder next to the
repository, when present), else from the bundled sample. Box prompts are the ground-truth mask's
bounding box when a ``masks/<same name>`` file sits next to the images folder, else a central box.
SAM ViT-B is measured only when its checkpoint is in ``WEAKSAM_WEIGHTS_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from napari_weaksam.backbones.device import DEVICE_CHOICES, describe_device, pick_device
from napari_weaksam.backbones.loaders import load_backbone
from napari_weaksam.backbones.sam import SamBackbone
from napari_weaksam.backbones.weights import SAM_CHECKPOINTS, WEIGHTS_DIR_ENV, WeightsError
from napari_weaksam.io import read_image
from napari_weaksam.sample import sample_dir

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lgg_mri_dev" / "images"
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".nii", ".nii.gz")

Row = tuple[str, str, str]


# -- environment -------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def print_environment(device: torch.device, data_desc: str) -> None:
    print("## Environment\n")
    print(f"- python {platform.python_version()}, torch {torch.__version__}")
    print(f"- CPU: {cpu_model()} ({os.cpu_count()} logical cores)")
    with contextlib.suppress(OSError):
        print(f"- load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})")
    print(f"- device: {describe_device(device)}")
    print(f"- data: {data_desc}\n")


# -- data --------------------------------------------------------------------------------------
def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES)


def _as_mask(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return (array[..., 0] if array.ndim == 3 else array) > 0


def _central_box(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    return np.array([w / 4, h / 4, 3 * w / 4, 3 * h / 4], dtype=np.float32)


def _mask_box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def _items_from(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """2D items (image, mask or None) of one file; a volume gives its largest-mask slice."""
    image = read_image(path)
    mask_path = path.parent.parent / "masks" / path.name
    mask = read_image(mask_path) if mask_path.is_file() else None
    if image.is_volume:
        index = image.n_slices // 2
        if mask is not None:
            areas = [int(_as_mask(mask.slice(i)).sum()) for i in range(mask.n_slices)]
            index = int(np.argmax(areas))
        return [(image.slice(index), None if mask is None else _as_mask(mask.slice(index)))]
    return [(image.slice(0), None if mask is None else _as_mask(mask.slice(0)))]


def load_items(folder: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` (image, box) pairs; images with a non-empty mask come first."""
    files = sorted(p for p in folder.iterdir() if _is_image(p))
    with_mask: list[tuple[np.ndarray, np.ndarray]] = []
    without: list[tuple[np.ndarray, np.ndarray]] = []
    # Spread the picks over the folder (slices of one patient are neighbours).
    stride = max(1, len(files) // (count * 4))
    for path in files[::stride]:
        for image, mask in _items_from(path):
            if mask is not None and mask.any():
                with_mask.append((image, _mask_box(mask)))
            else:
                without.append((image, _central_box(image.shape)))
        if len(with_mask) >= count:
            break
    return (with_mask + without)[:count]


# -- timing ------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[int], object], n: int, device: torch.device,
                warmup: int = 1) -> tuple[Timing, float]:
    """(median and fastest of ``n`` timed calls, seconds of the warm-up calls)."""
    start = time.perf_counter()
    for i in range(warmup):
        fn(i)
    sync(device)
    warm = time.perf_counter() - start
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        sync(device)
        times.append(time.perf_counter() - start)
    return Timing(statistics.median(times), min(times)), warm


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


class Timing(NamedTuple):
    median: float
    fastest: float

    def __str__(self) -> str:
        return f"{ms(self.median)} (min {ms(self.fastest)})"

    def __truediv__(self, count: int) -> Timing:
        return Timing(self.median / count, self.fastest / count)


def time_encode(backbone: SamBackbone, images: list[np.ndarray], n: int,
                device: torch.device) -> tuple[Timing, float]:
    return median_time(lambda i: backbone.encode([images[i % len(images)]]), n, device)


# -- sections ----------------------------------------------------------------------------------
def encode_rows(backbone: SamBackbone, images: list[np.ndarray], args,
                device: torch.device) -> list[Row]:
    rows: list[Row] = []
    size = backbone.preprocessing.size
    label = f"LiteMedSAM encode / item ({size}²)"

    median, _ = time_encode(backbone, images, args.n, device)
    rows.append((f"{label}, fp32 default", str(median),
                 f"{torch.get_num_threads()} threads; input already channels-last"))
    rows.append(("peak RSS, LiteMedSAM loaded + fp32 encode", f"{peak_rss_mib():.0f} MiB", ""))

    model_cl = copy.deepcopy(backbone)
    model_cl.image_encoder.to(memory_format=torch.channels_last)
    median, _ = time_encode(model_cl, images, args.n, device)
    rows.append((f"{label}, fp32 channels-last weights", str(median), "encoder weights converted"))
    del model_cl

    backbone.set_precision("bf16")
    try:
        median, _ = time_encode(backbone, images, args.n, device)
        rows.append((f"{label}, bf16 autocast", str(median), "one image per batch"))
        group = (images * 4)[:4]
        batched, _ = median_time(lambda i: backbone.encode(group, batch_size=4),
                                 max(3, args.n // 3), device)
        rows.append((f"{label}, bf16 autocast, batch of 4", str(batched / 4),
                     f"per image; the {device.type} default is {backbone.encode_batch_size}"))
    except Exception as error:  # noqa: BLE001 - report any failure, keep benchmarking
        rows.append((f"{label}, bf16 autocast", "failed", f"{type(error).__name__}: {error}"[:120]))
    finally:
        backbone.set_precision("fp32")

    for precision in ("fp32", "bf16"):
        name = f"{label}, torch.compile {precision}"
        if args.skip_compile:
            rows.append((name, "skipped", "--skip-compile"))
            continue
        compiled = copy.deepcopy(backbone)
        try:
            compiled.set_precision(precision)
            compiled.compile_encoder()
            median, warm = time_encode(compiled, images, args.n, device)
            rows.append((name, str(median), f"first call (compile) {warm:.1f} s"))
        except Exception as error:  # noqa: BLE001 - compile fails in many ways; report it
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            rows.append((name, "failed", f"{type(error).__name__}: {text}"[:120]))
        del compiled

    if device.type == "cpu":
        threads = torch.get_num_threads()
        for count in (1, 2):
            torch.set_num_threads(count)
            median, _ = time_encode(backbone, images, args.n, device)
            rows.append((f"{label}, fp32, {count} thread{'s' if count > 1 else ''}", str(median),
                         ""))
        torch.set_num_threads(threads)
    return rows


def decode_rows(backbone: SamBackbone, items, args, device: torch.device) -> list[Row]:
    rows: list[Row] = []
    image, box = items[0]
    embedding = backbone.encode_one(image)
    rng = np.random.default_rng(0)
    h, w = image.shape[:2]
    for count in (1, 4, 16, 64):
        jitter = rng.uniform(-5, 5, size=(count, 4)).astype(np.float32)
        boxes = np.clip(box[None] + jitter, 0, [w, h, w, h]).astype(np.float32)
        n = args.n if count == 1 else args.decode_n
        median, _ = median_time(lambda _i, b=boxes: backbone.decode(embedding, boxes=b), n, device)
        if count == 1:
            rows.append(("LiteMedSAM decode, 1 box", str(median), f"item {h}x{w}, {n} runs"))
        else:
            rows.append((f"LiteMedSAM decode, batch of {count} boxes", str(median),
                         f"{median / count} per prompt; {n} runs"))
    return rows


def agreement_rows(backbone: SamBackbone, items) -> list[Row]:
    """bf16 autocast (encode and decode) against fp32 on box prompts."""
    same = total = 0
    worst_fraction = 1.0
    max_diff = max_abs = 0.0
    dices = []
    for image, box in items:
        backbone.set_precision("fp32")
        ref = backbone.encode_one(image)
        ref_mask = backbone.decode(ref, boxes=box[None]).masks()[0, 0]
        backbone.set_precision("bf16")
        try:
            low = backbone.encode_one(image)
            low_mask = backbone.decode(low, boxes=box[None]).masks()[0, 0]
        finally:
            backbone.set_precision("fp32")
        max_diff = max(max_diff, float((ref.features - low.features).abs().max()))
        max_abs = max(max_abs, float(ref.features.abs().max()))
        equal = int((ref_mask == low_mask).sum())
        same += equal
        total += ref_mask.size
        worst_fraction = min(worst_fraction, equal / ref_mask.size)
        denom = ref_mask.sum() + low_mask.sum()
        dices.append(1.0 if denom == 0 else 2 * float((ref_mask & low_mask).sum()) / denom)
    return [
        ("bf16 vs fp32: identical mask pixels", f"{same / total:.4%}",
         f"{len(items)} images, 1 box each; worst image {worst_fraction:.4%}; "
         f"min Dice {min(dices):.4f}"),
        ("bf16 vs fp32: max abs embedding difference", f"{max_diff:.4f}",
         f"largest fp32 embedding magnitude {max_abs:.3f}"),
    ]


def sam_vit_b_rows(items, args, device: torch.device) -> list[Row]:
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    path = Path(folder).expanduser() / SAM_CHECKPOINTS["vit_b"] if folder else None
    if path is None or not path.is_file():
        return [("SAM ViT-B", "not available",
                 f"no {SAM_CHECKPOINTS['vit_b']} in ${WEIGHTS_DIR_ENV}")]
    try:
        sam = load_backbone("sam_vit_b", device=device, checkpoint=path)
    except WeightsError as error:
        return [("SAM ViT-B", "not available", str(error)[:120])]
    images = [image for image, _ in items]
    size = sam.preprocessing.size
    median, _ = time_encode(sam, images, args.n, device)
    rows = [(f"SAM ViT-B encode / item ({size}²), fp32", str(median), "")]
    image, box = items[0]
    embedding = sam.encode_one(image)
    median, _ = median_time(lambda _i: sam.decode(embedding, boxes=box[None]), args.n, device)
    rows.append(("SAM ViT-B decode, 1 box", str(median), ""))
    rows.append(("peak RSS after SAM ViT-B", f"{peak_rss_mib():.0f} MiB", ""))
    return rows


# -- main --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5, help="timed repetitions (at least 5)")
    parser.add_argument("--decode-n", type=int, default=None,
                        help="repetitions for the 16/64-box batches (default: --n)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of images (default: shared lgg_mri_dev, else bundled sample)")
    parser.add_argument("--images", type=int, default=10, help="images for the bf16 agreement")
    parser.add_argument("--skip-compile", action="store_true", help="do not try torch.compile")
    args = parser.parse_args(argv)
    if args.n < 5:
        parser.error("--n must be at least 5")
    args.decode_n = args.decode_n or args.n
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    folder = args.data if args.data.is_dir() else sample_dir() / "images"
    items = load_items(folder, args.images)
    if not items:
        print(f"no images found in {folder}", file=sys.stderr)
        return 1
    source = "bundled sample" if folder != args.data else folder.parent.name
    print_environment(device, f"{len(items)} images from {source}")

    rss_start = peak_rss_mib()
    start = time.perf_counter()
    backbone = load_backbone("litemedsam", device=device)
    rows: list[Row] = [("LiteMedSAM load", f"{time.perf_counter() - start:.2f} s", "")]
    images = [image for image, _ in items]
    rows += encode_rows(backbone, images, args, device)
    rows += decode_rows(backbone, items, args, device)
    rows.append(("peak RSS after all LiteMedSAM runs", f"{peak_rss_mib():.0f} MiB",
                 f"{rss_start:.0f} MiB before loading; includes torch.compile"))
    if device.type == "cuda":
        rows.append(("peak CUDA memory", f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB",
                     ""))
    rows += agreement_rows(backbone, items)
    rows += sam_vit_b_rows(items, args, device)

    print("| measurement | median (min) or value | notes |")
    print("|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
