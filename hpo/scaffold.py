"""A first study file for a folder of images (``hpo init``): settings chosen from the data.

The data set is read as ``hpo run`` reads it (the layout registry's detection and reader), its
class counts and a sample of its image sizes (header-only reads) decide the image size, the
folds and the loss, and the target (CPU or GPU) and the data's size decide the model, the
epochs and the search space. The study file is written as YAML text with comments that say what
each setting does, and only once every check passed.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpo.data import detect_layout, get_layout
from hpo.data._folder import SPLIT_FOLDERS
from hpo.data._table import raise_problems
from hpo.exceptions import ConfigError, DataError
from hpo.files import write_text_atomic
from hpo.study._storage import check_study_name

__all__ = [
    "DataSummary",
    "Scaffold",
    "init_study",
    "pick_image_size",
    "scaffold_study",
    "study_name_for",
    "summarize_data",
]

SIZE_SAMPLE = 200
"""How many images' sizes are read (evenly spread over the data set): headers only."""
IMBALANCE_RATIO = 2.0
"""Largest class / smallest class from which the search space adds losses for imbalance."""
MAX_SPLITS = 5


@dataclass(frozen=True)
class DataSummary:
    """What ``hpo init`` read from a data set.

    Attributes:
        root: The data root as given.
        layout: The layout detected (``data.format``).
        reason: Why that layout, in a few words.
        class_counts: Images per class, by class name (classes without images left out).
        groups: Groups (people, or images for ``folder``) in the smallest stratum: the most
            folds every fold can hold one of.
        median_size: ``(height, width)``, the median over the images whose size was read.
        sizes_read: How many images' sizes were read.
    """

    root: Path
    layout: str
    reason: str
    class_counts: dict[str, int]
    groups: int
    median_size: tuple[int, int]
    sizes_read: int

    @property
    def n_images(self) -> int:
        return sum(self.class_counts.values())

    @property
    def imbalance(self) -> float:
        """Images of the largest class per image of the smallest."""
        counts = self.class_counts.values()
        return max(counts) / min(counts)


@dataclass(frozen=True)
class Scaffold:
    """A study file written (or to write) for a data set.

    Attributes:
        name: The study name (``hpo run --study NAME``).
        path: Where the study file goes.
        text: The study file, YAML with comments.
        data: What was read from the data set.
        gpu: Settings for a GPU (pretrained backbones) rather than a CPU.
        image_size: ``(height, width)`` chosen.
        model: The model (or the models searched), in words.
        n_splits: Folds of the K-fold split.
        n_trials: A suggested study size for ``hpo run --n-trials``.
        next_commands: What to run next, in order.
    """

    name: str
    path: Path
    text: str
    data: DataSummary
    gpu: bool
    image_size: tuple[int, int]
    model: str
    n_splits: int
    n_trials: int
    next_commands: list[str] = field(default_factory=list)

    @property
    def imbalanced(self) -> bool:
        return self.data.imbalance >= IMBALANCE_RATIO


def study_name_for(data: Path) -> str:
    """A valid study name from a data folder's name (``My Shapes!`` -> ``my-shapes``); the
    parent's name for a ``train``/``eval`` folder."""
    path = Path(os.path.abspath(data))
    if path.name in SPLIT_FOLDERS and path.parent.name:
        path = path.parent
    chars = [c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in path.name.lower()]
    name = "-".join(part for part in "".join(chars).split("-") if part)
    name = name.lstrip("._-")[:128].removesuffix(".yaml")
    return name or "images"


def _read_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    """``(height, width)`` of up to :data:`SIZE_SAMPLE` images spread over ``paths``."""
    from PIL import Image, UnidentifiedImageError

    picks = np.unique(np.linspace(0, len(paths) - 1, min(SIZE_SAMPLE, len(paths))).astype(int))
    sizes = []
    for i in picks:
        try:
            with Image.open(paths[i]) as image:  # reads the header only
                width, height = image.size
        except (OSError, UnidentifiedImageError, ValueError):
            continue  # `hpo data check` names unreadable files; sizes need only some
        sizes.append((height, width))
    return sizes


def summarize_data(data: Path) -> DataSummary:
    """Read a data set's layout, classes, counts and image sizes.

    Raises:
        DataError: the folder is missing or not a data set (the first problem found, as
            ``hpo data check`` would report it), a class has fewer than 2 images, or no
            sampled image can be read.
    """
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: folder not found (give the folder of class folders)")
    layout, reason = detect_layout(data)
    scan = layout.scan(data, None)
    raise_problems(scan.problems, data)
    samples = scan.samples
    if not len(samples):
        raise DataError(f"{data}: no images found")
    counts = np.bincount(samples.labels, minlength=len(samples.class_names))
    class_counts = {
        name: int(n) for name, n in zip(samples.class_names, counts, strict=True) if n > 0
    }
    few = [name for name, n in class_counts.items() if n < 2]
    if few and layout.unit == "images":  # people-grouped layouts split on people, not classes
        more = f" (and {len(few) - 1} more)" if len(few) > 1 else ""
        raise DataError(
            f"{data}: class {few[0]!r} has 1 image{more}; every class needs at least 2 (one to "
            "train on, one to validate): add images or remove its folder"
        )
    groups = np.asarray(samples.groups).astype(str)
    per_stratum = [len(np.unique(groups[samples.strata == s])) for s in np.unique(samples.strata)]
    sizes = _read_sizes(list(samples.paths))
    if not sizes:
        raise DataError(f"{data}: none of the images sampled could be read; run hpo data check")
    median = (
        int(statistics.median(h for h, _ in sizes)),
        int(statistics.median(w for _, w in sizes)),
    )
    return DataSummary(
        root=data,
        layout=layout.name,
        reason=reason,
        class_counts=class_counts,
        groups=min(per_stratum),
        median_size=median,
        sizes_read=len(sizes),
    )


def _round_to(value: float, step: int) -> int:
    return max(step, int(value / step + 0.5) * step)


def pick_image_size(height: int, width: int, *, gpu: bool, n_images: int = 0) -> tuple[int, int]:
    """``(height, width)`` for training: the data's aspect ratio (capped at 2:1), the short
    side 224 on a GPU (what ImageNet backbones saw) in multiples of 16, on a CPU 96 for small
    data sets and 64 for larger ones, never above the images' own short side (at least 32),
    in multiples of 8."""
    if gpu:
        short, step = 224, 16
    else:
        step = 8
        target = 96 if n_images <= 2000 else 64
        short = max(32, min(target, (min(height, width) // step) * step))
    ratio = min(2.0, max(height, width) / max(1, min(height, width)))
    long = _round_to(short * ratio, step)
    return (long, short) if height > width else (short, long)


def _q(value: object) -> str:
    """A YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _para(text: str, indent: str = "") -> list[str]:
    """A comment paragraph, wrapped to fit 92 columns."""
    return textwrap.wrap(
        " ".join(text.split()),
        width=92,
        initial_indent=f"{indent}# ",
        subsequent_indent=f"{indent}# ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def _plan(summary: DataSummary, gpu: bool) -> dict[str, object]:
    """The choices that depend on the data's size and the target, with the reasons."""
    n = summary.n_images
    if gpu:
        epochs = 15 if n <= 2000 else 10
        batch = 32 if n <= 2000 else 64
        models = (
            ["efficientnet_b0", "resnet18", "resnet34"]
            if n <= 5000
            else ["efficientnet_b0", "resnet34", "convnext_tiny", "swin_t"]
        )
        return {"epochs": epochs, "batch": batch, "models": models, "trials": 40}
    epochs = 12 if n <= 2000 else 8 if n <= 20000 else 5
    batch = 32 if n <= 2000 else 64
    models = ["small_cnn"] if n <= 5000 else ["small_cnn", "mobilenet_v3_small"]
    return {"epochs": epochs, "batch": batch, "models": models, "trials": 30}


_GPU_MODELS = {
    "efficientnet_b0": "{weights: imagenet, dropout: {float: [0.1, 0.4]}}   # 5.3M params, fast",
    "resnet18": "{weights: imagenet}                                         # 11M, fast",
    "resnet34": "{weights: imagenet}                                         # 22M, robust",
    "convnext_tiny": "{weights: imagenet, stochastic_depth_prob: {float: [0.0, 0.2]}}  # 29M",
    "swin_t": "{weights: imagenet}                                           # 28M, transformer",
}


def scaffold_study(
    data: Path, *, name: str | None = None, gpu: bool = False, studies_dir: Path = Path("studies")
) -> Scaffold:
    """Read ``data`` and write the text of a study file for it (nothing is written).

    Args:
        data: The data root: a folder of class folders, one holding ``train/`` (and ``eval/``),
            or the competition layout.
        name: The study name; None: the folder's name, made a valid study name.
        gpu: Settings for a GPU (pretrained backbones at 224 px) instead of a CPU.
        studies_dir: Where ``hpo run`` looks for study files (``studies/``).

    Raises:
        ConfigError: ``name`` is not a valid study name.
        DataError: as :func:`summarize_data`.
    """
    name = check_study_name(name if name is not None else study_name_for(data))
    summary = summarize_data(data)
    plan = _plan(summary, gpu)
    height, width = pick_image_size(*summary.median_size, gpu=gpu, n_images=summary.n_images)
    n_splits = max(2, min(MAX_SPLITS, summary.groups))
    imbalanced = summary.imbalance >= IMBALANCE_RATIO
    models = list(plan["models"])  # type: ignore[call-overload]
    path = studies_dir / f"{name}.yaml"
    text = _render(
        name=name,
        summary=summary,
        gpu=gpu,
        image_size=(height, width),
        epochs=int(plan["epochs"]),  # type: ignore[call-overload]
        batch=int(plan["batch"]),  # type: ignore[call-overload]
        models=models,
        n_splits=n_splits,
        imbalanced=imbalanced,
    )
    n_trials = int(plan["trials"])  # type: ignore[call-overload]
    commands = [
        f"hpo data check {shlex.quote(summary.root.as_posix())}",
        f"hpo run --study {name} --dry-run",
        f"hpo run --study {name} --n-trials {n_trials}",
    ]
    if gpu:
        commands.insert(0, f"hpo models download {' '.join(models)}")
    return Scaffold(
        name=name,
        path=path,
        text=text,
        data=summary,
        gpu=gpu,
        image_size=(height, width),
        model=("pretrained " if gpu else "") + " / ".join(models),
        n_splits=n_splits,
        n_trials=n_trials,
        next_commands=commands,
    )


def _set(setting: str, comment: str = "") -> str:
    """One setting line, its comment aligned after it."""
    return f"{setting:<32} # {comment}" if comment else setting


def _render(
    *,
    name: str,
    summary: DataSummary,
    gpu: bool,
    image_size: tuple[int, int],
    epochs: int,
    batch: int,
    models: list[str],
    n_splits: int,
    imbalanced: bool,
) -> str:
    counts = summary.class_counts
    smallest = min(counts, key=lambda k: counts[k])
    largest = max(counts, key=lambda k: counts[k])
    height, width = image_size
    mh, mw = summary.median_size
    root = summary.root.as_posix()
    layout = get_layout(summary.layout)
    unit = layout.unit
    lines = [
        *_para(f"Study {name}: {len(counts)} classes of images in {root}."),
        *_para(
            "Written by `hpo init` for a GPU: ImageNet-pretrained backbones at 224 px "
            "(`hpo init` without --gpu writes a small CNN for a CPU)."
            if gpu
            else "Written by `hpo init` for a CPU: a small CNN on small images (`hpo init "
            "--gpu` writes ImageNet-pretrained backbones at 224 px for a GPU)."
        ),
        "#",
        *_para(
            f"The data: {summary.n_images} images, layout {summary.layout} ({summary.reason}); "
            f"smallest class {smallest!r} ({_images(counts[smallest])}), largest {largest!r} "
            f"({counts[largest]}); median image {mh}x{mw} (height x width, from "
            f"{summary.sizes_read} images)."
        ),
        "# Any setting can be changed here, or for one run without editing this file:",
        f"#   hpo run --study {name} --set train.epochs=5 --set data.image_size=[64,64]",
        "# Every key and what it does: docs/study-file.md.",
        "",
        "study:",
        _set("  direction: maximize", "the value: mean validation macro-F1 of the folds run"),
        _set("  storage: null", f"sqlite:///studies/{name}.db; --storage overrides"),
    ]
    if gpu:
        lines += [
            _set("  sampler: {name: tpe, seed: 0, n_startup_trials: 10}", "then TPE"),
            "  # Median pruning per epoch: after 6 finished trials, a trial below the median of",
            "  # the others at the same epoch stops; none is judged before epoch 4 (pretrained",
            "  # backbones change fast in their first epochs).",
            "  pruner: {name: median, n_startup_trials: 6, n_warmup_steps: 3}",
        ]
    else:
        marks = [str(3**k) for k in range(4) if 3**k < epochs]
        rungs = " and ".join([", ".join(marks[:-1]), marks[-1]] if len(marks) > 1 else marks)
        lines += [
            _set("  sampler: {name: tpe, seed: 0, n_startup_trials: 8}", "then TPE"),
            *_para(
                f"Successive halving: a trial goes on past epoch {rungs} only if it is in the "
                "top third of the trials judged there, so most trials stop early and a study "
                "costs a fraction of its unpruned epochs. Without it:",
                "  ",
            ),
            '  #   --set "study.pruner={name: none}"',
            "  pruner: {name: successive_halving, min_resource: 1, reduction_factor: 3}",
        ]
    # A root of class folders split into train/ and eval/ (a template-free layout).
    split_root = not layout.eval_template and (summary.root / "train").is_dir()
    lines += [
        _set("  heartbeat_interval: 60", "a silent worker's trial is failed and re-queued"),
        "",
        "data:",
        _set(f"  format: {summary.layout}", f"{layout.description} (docs/layouts.md)"),
        _set(
            f"  root: {_q(root)}", "read from its train/; eval/ is predicted" if split_root else ""
        ),
        "  # Height, width: the images' aspect ratio, "
        + ("224 px short side (what ImageNet backbones saw)." if gpu else "small for a CPU."),
        "  # Each epoch's time grows with the pixels: twice the side costs about 4x.",
        f"  image_size: [{height}, {width}]",
        "",
        "train:",
    ]
    if gpu:
        lines += [
            _set(f"  model: {{name: {models[0]}, weights: imagenet}}", "searched below"),
            "  # Epochs per fold: the main cost of a trial. Keep it fixed within a study:",
            "  # pruning compares trials per epoch.",
            f"  epochs: {epochs}",
            f"  batch_size: {batch}",
            "  # The head trains at lr, the pretrained backbone at lr * backbone_lr_mult.",
            "  optimizer: {name: adamw, lr: 0.001, weight_decay: 0.01, backbone_lr_mult: 0.3}",
            _set("  scheduler: {name: warmup_cosine, warmup_epochs: 1}", "cosine after warm-up"),
        ]
    else:
        lines += [
            _set("  model: {name: small_cnn, width: 16}", "a small CNN, seconds on a CPU"),
            "  # Epochs per fold: the main cost of a trial (about linear in it). Keep it fixed",
            "  # within a study: pruning compares trials per epoch.",
            f"  epochs: {epochs}",
            f"  batch_size: {batch}",
            "  optimizer: {name: adamw, lr: 0.001, weight_decay: 0.0001}",
            _set("  scheduler: {name: cosine}", "the lr falls along a cosine over the epochs"),
        ]
    lines += [
        _set("  loss: {name: cross_entropy}", "searched below"),
        *_para(
            f"K-fold split, stratified by class. n_splits is at most the smallest class's {unit} "
            f"({summary.groups}), so every validation fold holds each class. folds: how many of "
            "the n_splits each trial trains (each is a full training: 3 cost 3x one and give a "
            "steadier value); `hpo train --folds all` retrains the best config on all of them.",
            "  ",
        ),
        f"  kfold: {{n_splits: {n_splits}, folds: 1}}",
        "  # Random flips, crops and colour changes of training images. hflip: false if a",
        "  # mirrored image changes its class (text, digits, left/right).",
        "  augment: {hflip: true, crop_scale: 0.85, color_jitter: 0.1}",
        _set("  seed: 0", "the splits, initialization and augmentation"),
    ]
    if gpu:
        lines += [
            _set("  amp: true", "mixed precision on CUDA: faster, less memory"),
            _set("  channels_last: true", "the memory format tensor cores prefer"),
        ]
    lines += [
        "",
        "# What TPE searches: dotted paths of the settings above (docs/study-file.md).",
        "search_space:",
    ]
    if gpu:
        lines += [
            "  # The backbone, ImageNet-pretrained (once per machine: hpo models download).",
            "  train.model:",
            "    choice:",
            *[f"      {m}: {_GPU_MODELS[m]}" for m in models],
            "  train.optimizer.lr: {float: [1.0e-4, 3.0e-3], log: true}",
            "  train.optimizer.backbone_lr_mult: {float: [0.03, 1.0], log: true}",
            "  train.optimizer.weight_decay: {float: [1.0e-4, 5.0e-2], log: true}",
            "  train.scheduler:",
            "    choice:",
            "      warmup_cosine: {warmup_epochs: {int: [0, 2]}}",
            "      onecycle: {pct_start: {float: [0.1, 0.3]}}",
        ]
    else:
        if len(models) > 1:
            lines += [
                "  # A small CNN, or MobileNetV3 (randomly initialised: pretrained weights need",
                "  # `hpo models download mobilenet_v3_small`, then weights: imagenet).",
                "  train.model:",
                "    choice:",
                "      small_cnn: {width: {choice: [16, 32]}, dropout: {float: [0.0, 0.3]}}",
                "      mobilenet_v3_small: {dropout: {float: [0.1, 0.3]}}",
            ]
        else:
            lines += [
                _set("  train.model.width: {choice: [16, 32]}", "channels; 32 costs ~3x 16"),
                _set("  train.model.dropout: {float: [0.0, 0.3]}", "before the classifier"),
            ]
        lines += [
            "  train.optimizer.lr: {float: [1.0e-4, 3.0e-2], log: true}",
            "  train.optimizer.name: {choice: [sgd, adam, adamw]}",
            "  train.optimizer.weight_decay: {float: [1.0e-6, 1.0e-2], log: true}",
            "  train.scheduler:",
            "    choice:",
            "      cosine: {}",
            f"      step: {{step_size: {{int: [1, {max(2, epochs // 3)}]}}, "
            "gamma: {float: [0.1, 0.9]}}",
        ]
    if imbalanced:
        lines += [
            *_para(
                f"The classes are imbalanced ({summary.imbalance:.1f}x between the largest and "
                "the smallest): focal loss down-weights easy examples, sqrt_inverse weights "
                "classes by 1/sqrt(frequency), label smoothing softens overconfident targets.",
                "  ",
            ),
            "  train.loss:",
            "    choice:",
            "      cross_entropy: {weighting: {choice: [none, sqrt_inverse]}}",
            "      focal: {gamma: {float: [0.5, 3.0]}, weighting: {choice: [none, sqrt_inverse]}}",
            "      label_smoothing: {smoothing: {float: [0.0, 0.2]}}",
        ]
    else:
        lines += [
            "  # The classes are about balanced: plain cross-entropy, or with label smoothing",
            "  # (softer targets, often better calibrated).",
            "  train.loss:",
            "    choice:",
            "      cross_entropy: {}",
            "      label_smoothing: {smoothing: {float: [0.0, 0.2]}}",
        ]
    if gpu:
        lines += [
            "  # Mixing images regularizes short fine-tuning runs.",
            "  train.augment.mixup_alpha: {choice: [0.0, 0.2, 0.4]}",
            "  train.augment.cutmix_alpha: {choice: [0.0, 1.0]}",
        ]
    return "\n".join(lines) + "\n"


def init_study(
    data: Path,
    *,
    name: str | None = None,
    gpu: bool = False,
    force: bool = False,
    studies_dir: Path = Path("studies"),
) -> Scaffold:
    """Write ``studies_dir/NAME.yaml`` for ``data`` (see :func:`scaffold_study`), atomically,
    after every check passed.

    Raises:
        ConfigError: the study file exists (without ``force``) or ``name`` is invalid.
        DataError: as :func:`summarize_data`.
        HPOError: the study file cannot be written (a full disk, say): nothing is left.
    """
    chosen = check_study_name(name if name is not None else study_name_for(data))
    target = studies_dir / f"{chosen}.yaml"
    if target.exists() and not force:
        raise ConfigError(
            f"{target} exists: pass --force to overwrite it, or --name to write another study"
        )
    scaffold = scaffold_study(data, name=chosen, gpu=gpu, studies_dir=studies_dir)
    write_text_atomic(target, scaffold.text)
    return scaffold
