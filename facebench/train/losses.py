"""Loss functions for the engine's objectives (``Step -> {term name: scalar tensor}``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facebench.train.engine import MODEL_KEY, Step

HEAD_KEY = "head"


def margin_loss(step: Step) -> dict[str, torch.Tensor]:
    """Cross-entropy over the margin head's logits, named after the head ("arcface", "cosface").

    Leaves the last feature map, the embedding and the margin logits in ``step.cache`` for
    later terms (distillation).
    """
    model, head = step.modules[MODEL_KEY], step.modules[HEAD_KEY]
    features = model.forward_features(step.images)
    embedding = model.head(features)  # = model(images), with the feature map kept
    logits = head(embedding, step.labels)
    step.cache.update(features=features, embedding=embedding, logits=logits)
    return {head.name: F.cross_entropy(logits, step.labels)}
