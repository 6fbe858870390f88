"""The model zoo: ``create_model(name)`` and ``list_models()`` over one registry.

Importing this package registers every backbone (ResNet, IResNet, mobile models).
"""

# registration order is listing order: the ResNets, the IResNets, then the mobile models
from facebench.models import resnet  # noqa: F401, I001
from facebench.models import iresnet  # noqa: F401
from facebench.models import mobilenet  # noqa: F401
from facebench.models import mobilefacenet128  # noqa: F401
from facebench.models.common import FaceBackbone
from facebench.models.registry import ModelSpec, create_model, list_models, model_spec, register_model

__all__ = ["FaceBackbone", "ModelSpec", "create_model", "list_models", "model_spec", "register_model"]
