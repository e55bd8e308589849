"""A sentence-transformers model run by onnxruntime with int8 weights: exported once from the local folder, cached.

Only the common pipeline is supported: a Transformer module with a fast tokenizer (tokenizer.json), then mean or
CLS pooling, then optional normalization. `pipeline` returns None for anything else, and the caller uses PyTorch.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


@dataclass(frozen=True)
class Pipeline:
    """What the ONNX runner needs to know about a model folder: where the transformer is, its pooling and length."""

    transformer: Path
    pooling: str
    max_seq_length: int


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pipeline(folder: Path) -> Pipeline | None:
    """Return the model folder's pipeline if the ONNX runner supports it, else None."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or not modules:
        return None
    types = [m.get("type") for m in modules]
    if types not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
        return None
    transformer = folder / modules[0].get("path", "")
    pooling_config = _read_json(folder / modules[1].get("path", "") / "config.json") or {}
    enabled = [key for key, on in pooling_config.items() if key.startswith("pooling_mode") and on]
    modes = [POOLING_MODES.get(key) for key in enabled]
    st_config = _read_json(transformer / "sentence_bert_config.json") or {}
    if len(modes) != 1 or None in modes or not (transformer / "tokenizer.json").is_file():
        return None
    if not isinstance(st_config.get("max_seq_length"), int) or st_config.get("do_lower_case"):
        return None
    return Pipeline(transformer, modes[0], st_config["max_seq_length"])


RECIPE = 2
"""Version of the export recipe below; part of the cache key and of the encoder's fingerprint (vectors differ)."""


def export(model: Pipeline, target: Path) -> None:
    """Write the transformer of `model` as an ONNX graph with int8 weights to `target` (needs PyTorch, once).

    The graph's attention, layer norms and GELU are fused by onnxruntime's transformer optimizer, then every weight
    product (attention included) gets per-channel int8 weights; activations are quantized per call (per text).
    """
    import inspect
    import tempfile

    import torch
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    # Eager attention exports the plain products and softmax that the optimizer fuses into one Attention node.
    network = AutoModel.from_pretrained(str(model.transformer), local_files_only=True, attn_implementation="eager")
    network.train(False)  # inference mode: no dropout
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(network.forward).parameters:
        names.append("token_type_ids")

    class LastHiddenState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, *inputs):
            return self.network(**dict(zip(names, inputs))).last_hidden_state

    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    fusions = FusionOptions("bert")
    fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = False  # see SLOW_FUSIONS
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32 = Path(work) / "model.onnx"
        torch.onnx.export(
            LastHiddenState(), example, str(fp32), input_names=names, output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
        fused = Path(work) / "fused.onnx"
        optimize_model(
            str(fp32), model_type="bert", num_heads=network.config.num_attention_heads,
            hidden_size=network.config.hidden_size, optimization_options=fusions,
        ).save_model_to_file(str(fused))  # fmt: skip
        quantized = Path(work) / target.name
        quantize_dynamic(
            str(fused), str(quantized), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
        )  # fmt: skip
        os.replace(quantized, target)  # atomic: concurrent exports leave one whole file


SLOW_FUSIONS = ["SkipLayerNormFusion"]
"""onnxruntime fusions left out: measured on BBC+Reuters passages, MiniLM ran 1.2x faster with Add and
LayerNormalization than with SkipLayerNormalization (onnxruntime 1.31, 2 threads)."""


def _session(onnx_file: Path, *, threads: int = 0):
    """Return an onnxruntime session of `onnx_file` running each call on `threads` threads (0: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Threads spin between the operators of one call (1.3x faster than sleeping), and stop when it returns:
    # idle spinning threads took the CPU from FAISS and BM25 between questions.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return onnxruntime.InferenceSession(
        str(onnx_file), options, providers=["CPUExecutionProvider"], disabled_optimizers=SLOW_FUSIONS
    )


_RUNNERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="onnx-int8")
"""Threads that run the texts of one encode call side by side, one text per call each (onnxruntime frees the GIL)."""


class OnnxInt8Model:
    """An exported int8 model with its tokenizer: texts in, pooled (not yet normalized) float32 vectors out."""

    def __init__(self, model: Pipeline, onnx_file: Path):
        from tokenizers import Tokenizer

        self.onnx_file = onnx_file
        self.session = _session(onnx_file)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(model.transformer / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(model.max_seq_length)
        self.pooling = model.pooling

    @cached_property
    def single_thread_session(self):
        """Return a session of the same model running each call on one thread, for several texts at once.

        One text's call is too small to share between cores: its threads wait for each other after every operator,
        and on a busy machine for a thread that is not running. Texts run side by side on one thread each instead
        (600 BBC+Reuters texts on the shared 2-core machine: 324 texts/s against 172 with calls on two threads, and the
        same vectors bit for bit).
        """
        return _session(self.onnx_file, threads=1)

    @property
    def dimension(self) -> int:
        """Return the length of the model's vectors."""
        return int(self.session.get_outputs()[0].shape[-1])

    def _run(self, session, encoding) -> np.ndarray:
        """Return the pooled vector of one tokenized text, run on its own (int8 activations are scaled per call)."""
        ids = np.array([encoding.ids], dtype=np.int64)
        arrays = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self.inputs:
            arrays["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        states = session.run(None, arrays)[0][0]
        return states[0] if self.pooling == "cls" else states.mean(axis=0)

    def encode(self, texts: list[str], *, progress=None) -> np.ndarray:
        """Return one pooled vector per text, each text run on its own call: one text on every core, several side
        by side on one core each; `progress(1)` is called after each text, in order."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        if len(encodings) == 1:
            runs = [Future()]
            runs[0].set_result(self._run(self.session, encodings[0]))
        else:
            runs = [_RUNNERS.submit(self._run, self.single_thread_session, e) for e in encodings]
        try:
            for row, run in enumerate(runs):
                vectors[row] = run.result()
                if progress:
                    progress(1)
        finally:
            for run in runs:
                run.cancel()  # an interrupted call leaves no text running behind it
        return vectors
