"""Learning rate per step: linear warm-up, then cosine or polynomial decay to zero.

The rate is a pure function of the step (no hidden state), so a resumed run picks up the
exact rate of the step it resumes at. Warm-up step k (0-based) uses ``base * (k + 1) / warmup``
(insightface's ``PolyScheduler`` uses ``k / warmup``, which wastes step 0 at rate 0); then
polynomial ``base * (1 - t)^power`` (insightface: power 2) or cosine
``base * (1 + cos(pi t)) / 2``, with t running from 0 (end of warm-up) to 1 (after the last step).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from torch.optim import Optimizer


@dataclass(frozen=True)
class LRSchedule:
    """Rate for each step 0..total_steps-1 of one optimiser."""

    base_lr: float
    total_steps: int
    warmup_steps: int = 0
    kind: str = "cosine"  # "cosine" or "poly"
    power: float = 2.0

    def lr(self, step: int) -> float:
        """The learning rate used for the update of step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        if self.kind == "poly":
            return self.base_lr * (1.0 - t) ** self.power
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * t))

    def apply(self, optimizer: Optimizer, step: int) -> float:
        """Set every parameter group's rate for ``step``; return it."""
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, float | int | str]:
        return asdict(self)
