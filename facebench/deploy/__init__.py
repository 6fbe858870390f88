"""Deployed models: ONNX and OpenVINO files run by their own runtimes, and the export that makes them.

``DeployedModel`` wraps such a file as a torch module that takes the same normalised
NCHW batches as a zoo model, so verify, profile, the video pipeline and distillation run
it unchanged. ``export`` writes a zoo model (or checkpoint) to ONNX or OpenVINO IR in
fp32/fp16, or int8 by ONNX Runtime's quantisation tools, with a sidecar that says how to
feed it and where it came from.
"""

from facebench.deploy.runtimes import DEPLOYED_SUFFIXES, RUNTIMES, DeployedModel, is_deployed_file, load_deployed
from facebench.deploy.sidecar import read_sidecar, sidecar_path

__all__ = ["DEPLOYED_SUFFIXES", "RUNTIMES", "DeployedModel", "is_deployed_file", "load_deployed", "read_sidecar",
           "sidecar_path"]
