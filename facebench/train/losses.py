"""Loss functions for the engine's objectives (``Step -> {term name: scalar tensor}``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facebench.train.engine import MODEL_KEY, Step

HEAD_KEY = "head"


def margin_loss(step: Step) -> dict[str, torch.Tensor]:
    """Cross-entropy over the margin head's logits, named after the head ("arcface", "cosface").

    Leaves the embedding and the margin logits in ``step.cache`` for later terms (KD).
    """
    head = step.modules[HEAD_KEY]
    embedding = step.modules[MODEL_KEY](step.images)
    logits = head(embedding, step.labels)
    step.cache.update(embedding=embedding, logits=logits)
    return {head.name: F.cross_entropy(logits, step.labels)}
