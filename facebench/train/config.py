"""Training options as plain dataclasses (no torch import, so the CLI can show defaults instantly).

``EngineConfig`` is what the training loop itself reads (optimiser, schedule, precision,
checkpointing, logging); ``TrainConfig`` adds what ``facebench train`` builds (model, head,
data, validation sets). ``facebench distill`` extends ``TrainConfig`` the same way.
Every run folder's ``config.json`` is ``asdict`` of the resolved config.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

HEADS = ("arcface", "cosface")  # the margin heads facebench.models.heads registers
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "poly")
AMP_DTYPES = ("bf16", "fp16")
DEFAULT_LR = {"sgd": 0.1, "adamw": 1e-3}  # per process batch 64..128; insightface uses 0.1 with SGD
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}  # insightface: 5e-4 (SGD), 0.05..0.1 (AdamW)


@dataclass
class EngineConfig:
    """Options of the training loop shared by ``train`` and ``distill``."""

    epochs: int = 10
    batch_size: int = 64  # per process; the global batch is batch_size x processes
    optimizer: str = "sgd"
    lr: float | None = None  # None -> DEFAULT_LR[optimizer]
    momentum: float = 0.9  # SGD only
    weight_decay: float | None = None  # None -> DEFAULT_WEIGHT_DECAY[optimizer]
    schedule: str = "cosine"  # after warm-up: cosine to 0, or poly (1 - t)^poly_power
    poly_power: float = 2.0  # insightface's PolyScheduler power
    warmup_epochs: float = 1.0  # linear warm-up from 0, per step
    amp: bool | None = None  # None -> on for CUDA, off for CPU
    amp_dtype: str | None = None  # None -> bf16 where the GPU supports it, else fp16
    channels_last: bool = False
    clip_grad_norm: float | None = None  # max global L2 norm of each optimiser's gradients
    seed: int = 0
    log_every: int = 10  # steps between metrics.csv rows (and non-finite loss checks)
    checkpoint_every: int = 200  # steps between checkpoint.pt writes (and one at the end); 0 = end only
    val_every: int = 0  # steps between validations; 0 = at the end of each epoch
    workers: int | None = None  # DataLoader worker processes; None -> usable cores - 1 (0..8)
    threads: int | None = None  # CPU intra-op threads; None -> torch's default
    device: str = "auto"

    def resolved_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def resolved_weight_decay(self) -> float:
        return DEFAULT_WEIGHT_DECAY[self.optimizer] if self.weight_decay is None else self.weight_decay


@dataclass
class TrainConfig(EngineConfig):
    """``facebench train``: a zoo model with a margin head on a dataset, validated on pairs sets."""

    model: str = ""
    data: str = ""
    out: str = ""  # run folder; "" -> runs/<model>
    head: str = "arcface"
    scale: float | None = None  # None -> the head's default (64)
    margin: float | None = None  # None -> the head's default (arcface 0.5, cosface 0.35)
    embedding_size: int = 512
    align: str = "center"  # how images that are not 112x112 become 112x112 (facebench.data.images)
    augment: str = "flip"  # training augmentation (facebench.data.transforms.train_transform)
    val: dict[str, str] = field(default_factory=dict)  # set name -> pairs file
    val_folds: int | None = None  # use only the first k folds of each pairs set (CPU budgets); None = all
    val_flip: bool = True
    val_batch_size: int = 128


# Options that may differ when a run is resumed: where it runs, not what it computes.
RESUME_OVERRIDABLE = ("device", "workers", "threads")


def config_fields(cls: type) -> list[str]:
    """Field names of a config dataclass, in declaration order."""
    return [f.name for f in fields(cls)]
