"""The study's settings as data: one ``Preset`` per scale, read by ``facebench bench``.

A preset fixes everything a run depends on (models, data, epochs, batch, learning rate,
seed, verification and profiling settings), so two bench runs of one preset are
comparable and a half-finished one can be resumed. Input resolution is not a setting:
every zoo model takes 112x112 faces (``facebench.input_spec``).

``cpu-small`` (this repository's committed reports) is sized for about 45 minutes on 2 CPU
cores. Wall times of a run on an AMD EPYC (2 cores, with a one-core dlib job beside it most
of the time; 47.5 min in all; the committed reports' run took 38.5 min on an Intel Xeon,
each step's time in reports/summary.md):
  teacher r18, 1 epoch of the 5,373-image CelebA subset           9.2 min
  mobilenet none (vanilla), 1 epoch                                6.6 min
  mobilenet kd / adv / emb, 1 epoch each, teacher forward too     7.6 / 5.2 / 4.9 min
  final verification, LFW folds 1-4 (2,400 pairs), no flip       0.3-2 min each
  dlib teacher: its LFW embeddings (3,074 images)                  about 2.5 min from an empty cache (0 when cached)
  dlib -> mobilenet emb: CelebA embeddings once, then 1 epoch     about 4.5 + 2 min
  profile (batch 1, 2 threads) and report                          0.2 min
dlib's network takes about 100 ms per image on one core; its embeddings go to facebench's
on-disk cache (one worker process per core), so a second bench pays only the students.
The teacher is r18, not the study's r101 (r101 trains at under 2 images/s here: one epoch
would take the whole budget), and the r18 student is left out (it would be the teacher's
own architecture and cost another 9 min per method). Note the zoo's r18 costs 1.74 GMACs
at 112x112, 3.5x torchvision's resnet18 at that size (its stem keeps 56x56 maps). One
epoch from scratch leaves every trained model below even an untrained network on LFW
(measured: untrained mobilenet 59.8%, vanilla 1 epoch 56.9%, all 6000 pairs): the preset
shows the pipeline and the relative costs, not the study's numbers; at this length the
methods differ by a few points at most.

``cpu-real`` asks the study's question at CPU scale with a teacher worth learning from: the
pretrained MobileFaceNet (mfn128, 99.45 % on all 6000 LFW pairs) taught mobilenet with each
method, 2 epochs per run, three seeds per cell, on the CelebA subset and LFW aligned once with
MTCNN, verified on all 6000 pairs. Its settings (2 epochs, lr 0.1, batch 64, ArcFace m 0.5,
flip) are those that gave the Vanilla student its best LFW accuracy in short one-seed trials
(reports/cpu-real/trials.md). Measured on a 2-core AMD EPYC: 56.8 min in all; aligning
CelebA and LFW about 2 min, the teacher's verification 1 min, a Vanilla run about 3 min, a
KD, ADV or EMB run 4-5 min, each verification about 30 s (before every verification also scored
every pair of the aligned LFW photos as ``lfw-all`` and both sets with 24-px probes: one more
embedding pass, about 30 s more each, and a few seconds of all-pairs scoring).

``deploy`` (``facebench.bench.deploy``) measures a pretrained model and its deployable
variants instead of training anything; ``detectors`` (``facebench.bench.detector_table``) measures
each face detector and what its crops do to the pretrained MobileFaceNet.

``paper`` is the study's setting for a GPU machine: r101 teacher, r18 and mobilenet
students, MS1M (insightface's faces_emore train.rec), LFW and CASIA-WebFace pairs, with
insightface's ms1mv2 recipe (SGD 0.1, batch 128, 20 epochs, polynomial decay).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from facebench.bench.deploy import DEPLOY, DeployPreset
from facebench.bench.detector_table import DETECTORS, DetectorPreset
from facebench.distill.config import METHODS
from facebench.errors import FacebenchError

METHOD_ORDER = tuple(METHODS)  # vanilla students first, then the distillation methods, as registered


@dataclass(frozen=True)
class Preset:
    """Everything a bench run depends on."""

    name: str
    description: str
    teacher: str  # zoo name: trained first with `facebench train`, or pretrained with teacher_weights
    students: tuple[str, ...]  # zoo names, each distilled with every method
    methods: tuple[str, ...]  # distill methods; "none" = vanilla student under identical settings
    data: str  # training data: identity folders or an insightface train.rec
    verify_sets: dict[str, str]  # set name -> pairs file (pairs.txt, .bin, .csv)
    teacher_epochs: int
    student_epochs: int
    batch_size: int  # per process
    seeds: tuple[int, ...]  # each student and method is trained once per seed (folders -seedN when several)
    lr: float  # peak learning rate (SGD)
    schedule: str  # cosine or poly
    warmup_epochs: float
    checkpoint_every: int  # steps between checkpoints (what a resumed bench loses at most)
    validate_in_loop: bool  # also score verify_sets every epoch (curves in val.csv); costly on a CPU
    verify_folds: int | None  # final verification on the first k folds of each set; None = all
    verify_flip: bool
    verify_batch_size: int
    profile_device: str  # auto, cpu or cuda
    profile_batch_size: int
    profile_threads: int | None  # CPU threads pinned while timing; None = torch's default
    profile_warmup: int
    profile_iters: int
    expected: str  # expected wall time and on what
    device: str = "auto"  # training and verification
    align: str = "center"
    extra_train: dict[str, Any] = field(default_factory=dict)  # any other TrainConfig field
    # pretrained external teachers (dlib): verified as they come, each distilled into every student with
    # --method emb, the one method an embeddings-only teacher allows
    external_teachers: tuple[str, ...] = ()
    teacher_weights: str | None = None  # pretrained weights: the teacher is verified as it comes, not trained
    # align the training data and the verification set's photos once with this detector (AlignStep), then
    # train and verify on the aligned copies; None: crop on the fly with ``align``
    prealign: str | None = None
    prealign_workers: int = 2
    # every verification also scores every pair of the verification set's photos (aligned copy with prealign)
    # as this all-pairs set (verify --folders); None: none
    all_pairs: str | None = None
    degrade: tuple[str, ...] = ()  # verify --degrade: one more row per set with each probe degraded so

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CPU_SMALL = Preset(
    name="cpu-small",
    description="CPU-scale study: r18 teacher, mobilenet student x none/kd/adv/emb, dlib teacher -> mobilenet emb, "
    "CelebA subset, LFW folds 1-4",
    teacher="r18",
    students=("mobilenet",),
    methods=METHOD_ORDER,
    data="../shared/data/celeba",
    verify_sets={"lfw": "../shared/data/lfw/pairs.txt"},
    teacher_epochs=1,
    student_epochs=1,
    batch_size=64,
    seeds=(0,),
    lr=0.1,
    schedule="cosine",
    warmup_epochs=0.2,
    checkpoint_every=20,
    validate_in_loop=False,
    verify_folds=4,  # 1,200 mismatched pairs: enough for TAR at FAR = 1e-3
    verify_flip=False,
    verify_batch_size=64,
    profile_device="cpu",
    profile_batch_size=1,
    profile_threads=2,
    profile_warmup=10,
    profile_iters=50,
    expected="about 40-50 min on 2 CPU cores (38.5-47.5 min measured, dlib included; longer under load)",
    device="cpu",
    external_teachers=("dlib",),
)

PAPER = Preset(
    name="paper",
    description="The study: r101 teacher, r18 and mobilenet students x none/kd/adv/emb, MS1M, LFW and CASIA pairs",
    teacher="r101",
    students=("r18", "mobilenet"),
    methods=METHOD_ORDER,
    data="data/faces_emore/train.rec",
    verify_sets={"lfw": "data/faces_emore/lfw.bin", "casia": "data/casia/pairs.csv"},
    teacher_epochs=20,
    student_epochs=20,
    batch_size=128,
    seeds=(0,),
    lr=0.1,
    schedule="poly",
    warmup_epochs=0.0,
    checkpoint_every=2000,
    validate_in_loop=True,
    verify_folds=None,
    verify_flip=True,
    verify_batch_size=256,
    profile_device="cuda",
    profile_batch_size=1,
    profile_threads=None,
    profile_warmup=20,
    profile_iters=100,
    expected="about 2 GPU-days on one H100-class GPU (estimate from operation counts; benchmarks/paper_time.py "
    "measures it)",
    device="cuda",
)

CPU_REAL = replace(
    CPU_SMALL,  # its settings, but for these
    name="cpu-real",
    description="CPU-scale study from a real teacher: pretrained MobileFaceNet (mfn128) -> mobilenet x "
    "none/kd/adv/emb, 3 seeds, CelebA subset and LFW aligned with MTCNN, all 6000 LFW pairs",
    teacher="mfn128",
    teacher_weights="../shared/models/mobilefacenet/mobilefacenet.pt",
    teacher_epochs=0,  # not trained
    student_epochs=2,
    seeds=(0, 1, 2),
    verify_folds=None,
    expected="about 65 min on 2 CPU cores (56.8 min measured before lfw-all and the 24-px probes)",
    external_teachers=(),
    prealign="mtcnn",
    all_pairs="lfw-all",
    degrade=("downscale:24",),
)

PRESETS: dict[str, Preset | DeployPreset | DetectorPreset] = {
    p.name: p for p in (CPU_SMALL, CPU_REAL, PAPER, DEPLOY, DETECTORS)}


def get_preset(name: str) -> Preset | DeployPreset | DetectorPreset:
    """The preset called ``name``; an unknown name -> FacebenchError listing the presets."""
    if name not in PRESETS:
        raise FacebenchError(f"--preset {name!r} is not one of: {', '.join(PRESETS)}")
    return PRESETS[name]
