"""Tiny STAND-IN models with CLIP's interface, built with the onnx package.

For machines that cannot reach the Hugging Face hub and have no CLIP weights (qinb's own build
machines): they let the image code paths run end to end. These two ONNX graphs have CLIP's inputs and
output size — vision: ``pixel_values`` [N, 3, 224, 224] -> 512-d; text: ``input_ids`` -> 512-d —
and random fixed weights. They go through exactly the fastembed code real weights go through.
They carry no meaning: results made with them show mechanics (ids, counts, which model ran),
never that a picture of a cat is near the word "cat". Users with the hub get real CLIP from
fastembed and never need this module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from qinb import models
from qinb.errors import ModelError, require

DIM = 512
CLIP_PREPROCESSOR = {
    "image_processor_type": "CLIPImageProcessor",
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 3,
    "do_center_crop": True, "crop_size": {"height": 224, "width": 224},
    "do_rescale": True, "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True,
}


def _save(graph: Any, path: Path) -> None:
    require("onnx", "standin")
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build_vision(directory: Path, seed: int = 0) -> Path:
    """STAND-IN vision model: 32x32 patches -> 16 channels -> linear map to 512-d."""
    require("onnx", "standin")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    conv = numpy_helper.from_array(rng.normal(size=(16, 3, 32, 32)).astype(np.float32), "conv_w")
    proj = numpy_helper.from_array(rng.normal(size=(16 * 7 * 7, DIM)).astype(np.float32), "proj_w")
    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["pixel_values", "conv_w"], ["patches"], strides=[32, 32]),
            helper.make_node("Tanh", ["patches"], ["act"]),
            helper.make_node("Reshape", ["act", "flat"], ["flat_act"]),
            helper.make_node("MatMul", ["flat_act", "proj_w"], ["image_embeds"]),
        ],
        "standin_clip_vision",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["N", DIM])],
        initializer=[conv, proj, shape],
    )
    directory.mkdir(parents=True, exist_ok=True)
    _save(graph, directory / "model.onnx")
    (directory / "preprocessor_config.json").write_text(json.dumps(CLIP_PREPROCESSOR))
    (directory / "STAND-IN.txt").write_text(__doc__ or "")
    return directory


def build_text(directory: Path, tokenizer_dir: Path, seed: int = 1) -> Path:
    """STAND-IN text model: a random token embedding table averaged over the tokens -> 512-d.

    The tokenizer files are MiniLM's (any tokenizer.json fastembed can load will do).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    table = numpy_helper.from_array(rng.normal(size=(30522, DIM)).astype(np.float32), "tokens")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["tokens", "input_ids"], ["vectors"]),
            helper.make_node("ReduceMean", ["vectors"], ["text_embeds"], axes=[1], keepdims=0),
        ],
        "standin_clip_text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "L"])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["N", DIM])],
        initializer=[table],
    )
    directory.mkdir(parents=True, exist_ok=True)
    _save(graph, directory / "model.onnx")
    for name in models.TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, directory / name)
    (directory / "STAND-IN.txt").write_text(__doc__ or "")
    return directory


def register_clip(directory: str | Path | None = None) -> dict[str, Path]:
    """Build the STAND-IN CLIP models (once) and register them under the real CLIP names.

    The text model borrows MiniLM's tokenizer, which must be local (``qinb models``).

    Examples
    --------
    >>> qinb.standin.register_clip()   # only where no real CLIP weights can be had
    """
    root = Path(directory) if directory else models.models_dir() / "standin-clip"
    tokenizer = models.local_path(models.MINILM)
    if tokenizer is None:
        raise ModelError("the stand-in CLIP text model needs MiniLM's tokenizer: run `qinb models`")
    vision, text = root / "vision", root / "text"
    if not (vision / "model.onnx").exists():
        build_vision(vision)
    if not (text / "model.onnx").exists():
        build_text(text, tokenizer)
    models.register_local(models.CLIP_VISION, vision)
    models.register_local(models.CLIP_TEXT, text)
    return {"vision": vision, "text": text}


def use_where_no_clip() -> bool:
    """Register the STAND-IN CLIP models unless real CLIP weights can be had (local directories
    or the Hugging Face hub); True if it did. Notebooks call this, so that they run the same way
    under ``make lab``, ``make demo``, Binder and the tests.

    Examples
    --------
    >>> if qinb.standin.use_where_no_clip():
    ...     print("stand-in CLIP models: image similarities mean nothing here")
    """
    if (models.local_path(models.CLIP_VISION) and models.local_path(models.CLIP_TEXT)) \
            or models.hub_reachable():
        return False
    register_clip()
    return True
