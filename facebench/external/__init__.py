"""External models: pretrained face models run by another library (dlib now; exported models next).

One small interface (``ExternalModel``: embed a batch of images, its settings, name and
size) sits above the zoo's backbones, so ``facebench.models`` stays a leaf that builds
torch modules only. Importing this package registers every external model; each one
imports its own library only when loaded.
"""

from facebench.external import dlib_face  # noqa: F401  (registers dlib; the dlib library loads only when used)
from facebench.external.base import ExternalModel, is_external
from facebench.external.registry import (
    ExternalSpec,
    external_spec,
    list_external,
    load_external,
    refuse_external,
    register_external,
)

__all__ = ["ExternalModel", "ExternalSpec", "external_spec", "is_external", "list_external", "load_external",
           "refuse_external", "register_external"]
