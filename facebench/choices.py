"""The closed sets of option values (devices, precisions, crop rules, detectors, runtimes, formats); torch-free.

The modules that act on a value take its set from here, and the CLI offers each as a Click choice
(``facebench.cli.option_types``), so a bad value is refused while the options are parsed, before any heavy import.
"""

DEVICE_CHOICES = ("auto", "cpu", "cuda")  # and cuda:N
PRECISION_CHOICES = ("fp32", "fp16", "bf16")
ALIGN_CHOICES = ("none", "center", "mtcnn", "yunet", "retinaface", "haar")  # how an image that is not 112x112 becomes one
AUGMENTS = ("flip", "flip-shift", "none")  # training augmentation (facebench.data.transforms)
DETECTOR_NAMES = ("mtcnn", "yunet", "retinaface", "haar")  # facebench.data.detectors.build_detector
ALIGN_DETECTORS = (*DETECTOR_NAMES, "center")  # facebench align: a detector, or centre-crop only
RUNTIMES = ("torch", "onnxruntime", "openvino")
PAIR_FORMATS = ("auto", "lfw", "csv", "bin")  # auto: by suffix
EXPORT_FORMATS = ("onnx", "openvino")
EXPORT_PRECISIONS = ("fp32", "fp16")
QUANTIZE = ("none", "int8", "int8-dynamic")
BENCH_PRESETS = ("cpu-small", "cpu-real", "paper", "deploy", "detectors")  # facebench.bench.presets defines each
