"""``facebench verify``: verification accuracy, thresholds, FAR/FRR, TAR@FAR, EER and ROC on pairs sets."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.model_options import (
    BgrOption,
    InputMeanOption,
    InputSizeOption,
    InputStdOption,
    RuntimeOption,
    WeightsOption,
    model_options,
)
from facebench.cli.option_types import DEVICE_METAVAR, Align, PairFormat, Precision, check_device


@command("verify", lock="out")
def verify(
    model: str = typer.Option(
        ..., "--model", help="Run folder (its best.pt, else checkpoint.pt), checkpoint .pt, .onnx/.xml file, "
        "external model (dlib), or zoo name (with --weights FILE: those weights; without: random, labelled untrained)."
    ),
    pairs: list[str] = typer.Option([], "--pairs", metavar="<NAME=PATH>", show_default=False,
                                    help="Pairs file: LFW pairs.txt, .bin or .csv, as PATH (the set is named by its "
                                    "stem) or NAME=PATH; repeat for more sets. [--pairs or --folders required]"),
    folders: list[str] = typer.Option([], "--folders", metavar="<NAME=DIR>", show_default=False,
                                      help="Identity folders DIR/<identity>/<image> as NAME=DIR (or DIR): every pair "
                                      "of distinct images, FNMR at FMR 1e-2..1e-6 with identity-bootstrap intervals, "
                                      "and 1:N identification; repeatable."),
    degrade: list[str] = typer.Option([], "--degrade", metavar="<RECIPE>", show_default=False,
                                      help="One more row per set with the probe degraded: downscale:24, jpeg:20, "
                                      "blur:2, noise:8, dark:0.4, or steps joined by '+'; repeatable."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of --degrade noise and of the identity bootstrap."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Identity-bootstrap replicates for the "
                                  "all-pairs intervals (0: no intervals)."),
    images_root: Path | None = typer.Option(None, help="Folder the pairs' image paths are under.",
                                            show_default="the pairs file's folder"),
    format: PairFormat = typer.Option("auto", "--format", help="auto: by suffix (.bin, .csv, else lfw)."),
    align: Align = typer.Option("center", help="center (centre-crop rule), a detector (mtcnn, yunet, retinaface, "
                                "haar: the main face warped onto the ArcFace template), or none (already 112x112)."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Flip TTA: embedding(img) + embedding(flipped img)."),
    batch_size: int = typer.Option(128, min=1, help="Images per forward pass."),
    device: str = typer.Option("auto", callback=check_device, metavar=DEVICE_METAVAR),
    precision: Precision | None = typer.Option(None, help="Weights and input cast to it, as profile does (a "
                                               ".onnx/.xml file runs in its own).",
                                               show_default="fp16 on CUDA, fp32 on CPU"),
    weights: WeightsOption = None,
    runtime: RuntimeOption = None,
    input_size: InputSizeOption = None,
    input_mean: InputMeanOption = None,
    input_std: InputStdOption = None,
    bgr: BgrOption = False,
    folds: int | None = typer.Option(None, "--folds", min=2, help="Use the first K folds of each pairs file.",
                                     show_default="all"),
    out: Path = typer.Option(..., "--out", help="Folder for verify.json/.md/.csv, and scores.csv, roc.png, scores.png "
                             "(pairs sets) or det.png, pairs_<set>.npz (folder sets)."),
) -> None:
    """Verify a model on pairs sets with the insightface 10-fold protocol, and on identity-folder sets with the
    all-pairs protocol at fixed operating points (one row per set, and per --degrade recipe).

    Writes nothing until every set is scored; bad input (missing image, empty pairs, unequal folds, unreadable checkpoint) stops with one line and exit code 2.
    """
    from facebench.allocator import tune_allocator
    from facebench.data.degrade import parse_degradation
    from facebench.data.folder_set import load_folder_set
    from facebench.data.images import check_align
    from facebench.deploy import DeployedModel
    from facebench.device import check_precision, resolve_device
    from facebench.errors import FacebenchError
    from facebench.eval.folder_verify import folder_summary
    from facebench.eval.verify import load_pair_sets, parse_named_pairs, run_settings, verify_sets, write_outputs
    from facebench.external import is_external
    from facebench.modelspec import resolve_model

    tune_allocator()
    check_align(align)
    options = model_options(weights, runtime, input_size, input_mean, input_std, bgr)
    torch_device = resolve_device(device)
    if precision is not None:
        check_precision(torch_device, precision)
    if not pairs and not folders:
        raise FacebenchError("give at least one set to verify: --pairs FILE (10-fold protocol) or --folders "
                             "NAME=DIR (every pair of an identity-folder set)")
    degradations = [parse_degradation(spec, seed) for spec in degrade]
    named = parse_named_pairs(pairs, "--pairs")
    named_folders = parse_named_pairs(folders, "--folders")
    for name in set(named) & set(named_folders):
        raise FacebenchError(f"--pairs and --folders both name a set {name!r}; name one of them: --folders "
                             f"NAME={named_folders[name]}")
    # each set's fold check comes after the model is read (score_pair_sets), as verify has always reported it
    sets = load_pair_sets(named, folds, "--folds", format=format, images_root=images_root, check=False)
    folder_sets = [load_folder_set(name, root) for name, root in named_folders.items()]
    resolved = resolve_model(model, options)
    if precision not in (None, "fp32") and (is_external(resolved.model) or isinstance(resolved.model, DeployedModel)):
        raise FacebenchError(f"--precision {precision}: {model} runs in its own precision; drop --precision")
    scored, scored_folders = verify_sets(resolved, sets, folder_sets, align=align, device=torch_device,
                                         batch_size=batch_size, flip=flip, precision=precision,
                                         degradations=degradations, bootstrap=bootstrap, seed=seed)  # fmt: skip
    settings = run_settings(resolved, torch_device, batch_size, flip, align, folds, precision)
    paths = write_outputs(out, scored, resolved, settings, folders=scored_folders)
    for item in scored_folders:
        console.print(f"{item.name}: {resolved.label} {folder_summary(item)}", highlight=False, soft_wrap=True)
    for item in scored:
        r = item.result
        console.print(
            f"{item.name}: {resolved.label} accuracy {r.accuracy:.4f} +- {r.accuracy_std:.4f}, "
            f"EER {r.eer:.4f}, AUC {r.roc_auc:.4f}, FAR {r.far:.4f} FRR {r.frr:.4f} at d<{r.threshold_sq_l2:.3f} "
            f"(cos>{r.threshold_cosine:.3f}), {r.n_pairs} pairs in {item.wall_s:.1f} s",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"wrote {', '.join(str(p) for p in paths)}", highlight=False, soft_wrap=True)
