"""An ONNX graph run as a PyTorch module, its weights trainable.

Pretrained networks that a package ships only as `.onnx` (the PP-OCRv4 text
recogniser in the `rapidocr-onnxruntime` wheel) are fine-tuned through this:
every node becomes the matching torch operation, every float constant with
more than one element (convolution and linear weights, BatchNorm and affine
parameters) becomes an `nn.Parameter`, and BatchNorm keeps running
statistics so that `train()` and `eval()` behave as in any torch network.
Only the operators those graphs use are implemented; anything else stops
with the operator's name.
"""

from __future__ import annotations

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _safe(name: str) -> str:
    return name.replace(".", "_").replace("/", "_").replace(":", "_")


class OnnxGraph(nn.Module):
    """Runs `model`'s nodes in order. `outputs` names the tensors returned
    (default: the graph's outputs); nodes that no requested output depends on
    are skipped."""

    def __init__(self, model: onnx.ModelProto, outputs: list[str] | None = None):
        super().__init__()
        graph = model.graph
        self.input_name = graph.input[0].name
        self.outputs = outputs or [o.name for o in graph.output]
        self.params = nn.ParameterDict()
        self.buffers_ = {}
        self.constants: dict[str, torch.Tensor] = {}
        self.param_names: dict[str, str] = {}
        bn_stats: dict[str, tuple[str, str]] = {}
        nodes = []
        for node in graph.node:
            if node.op_type == "Constant":
                value = numpy_helper.to_array(_attrs(node)["value"])
                tensor = torch.from_numpy(value.copy())
                out = node.output[0]
                if tensor.is_floating_point() and tensor.numel() > 1:
                    key = _safe(out)
                    self.params[key] = nn.Parameter(tensor.float())
                    self.param_names[out] = key
                else:
                    self.constants[out] = tensor
                continue
            nodes.append(node)
        for init in graph.initializer:
            tensor = torch.from_numpy(numpy_helper.to_array(init).copy())
            if tensor.is_floating_point() and tensor.numel() > 1:
                key = _safe(init.name)
                self.params[key] = nn.Parameter(tensor.float())
                self.param_names[init.name] = key
            else:
                self.constants[init.name] = tensor
        # BatchNorm running statistics are buffers, not parameters.
        for node in nodes:
            if node.op_type == "BatchNormalization":
                for name in node.input[3:5]:
                    key = self.param_names.pop(name, None)
                    if key is not None:
                        value = self.params.pop(key).detach()
                        buf = "bn_" + key
                        self.register_buffer(buf, value.clone())
                        self.buffers_[name] = buf
                bn_stats[node.output[0]] = (node.input[3], node.input[4])
        # Keep only the nodes the requested outputs need.
        needed = set(self.outputs)
        kept = []
        for node in reversed(nodes):
            if any(o in needed for o in node.output):
                kept.append(node)
                needed.update(node.input)
        self.nodes = list(reversed(kept))
        unused = [k for n, k in list(self.param_names.items()) if n not in needed]
        for k in unused:
            del self.params[k]
        self.param_names = {n: k for n, k in self.param_names.items() if n in needed}

    def value(self, env: dict, name: str):
        if name == "":
            return None
        if name in env:
            return env[name]
        if name in self.param_names:
            return self.params[self.param_names[name]]
        if name in self.buffers_:
            return getattr(self, self.buffers_[name])
        if name in self.constants:
            return self.constants[name]
        raise KeyError(f"tensor {name} is not defined before its use")

    def forward(self, x: torch.Tensor, outputs: list[str] | None = None):
        env = {self.input_name: x}
        for node in self.nodes:
            ins = [self.value(env, i) for i in node.input]
            env[node.output[0]] = self.run(node, ins)
        want = outputs or self.outputs
        res = [env[o] for o in want]
        return res[0] if len(res) == 1 else res

    def run(self, node, ins):
        op = node.op_type
        a = _attrs(node)
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[0] == pads[2] and pads[1] == pads[3], "asymmetric pads"
            return F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                            stride=a.get("strides", 1), padding=pads[:2],
                            dilation=a.get("dilations", 1), groups=a.get("group", 1))
        if op == "BatchNormalization":
            x, w, b, mean, var = ins
            return F.batch_norm(x, mean, var, w, b, self.training, 0.1, a.get("epsilon", 1e-5))
        if op == "Mul":
            return ins[0] * ins[1]
        if op == "Add":
            return ins[0] + ins[1]
        if op == "Sub":
            return ins[0] - ins[1]
        if op == "Div":
            return ins[0] / ins[1]
        if op == "Pow":
            return ins[0] ** ins[1]
        if op == "Sqrt":
            return torch.sqrt(ins[0])
        if op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min")
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max")
            return torch.clamp(ins[0], float(lo), float(hi))
        if op == "Relu":
            return F.relu(ins[0])
        if op == "Sigmoid":
            return torch.sigmoid(ins[0])
        if op == "HardSigmoid":
            return torch.clamp(ins[0] * a.get("alpha", 0.2) + a.get("beta", 0.5), 0, 1)
        if op == "GlobalAveragePool":
            return ins[0].mean(dim=(2, 3), keepdim=True)
        if op == "AveragePool":
            assert not a.get("ceil_mode", 0) and not any(a.get("pads", [0])), "pool padding"
            return F.avg_pool2d(ins[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]))
        if op == "MatMul":
            return torch.matmul(ins[0], ins[1])
        if op == "Softmax":
            return torch.softmax(ins[0], dim=a.get("axis", -1))
        if op == "ReduceMean":
            return ins[0].mean(dim=a["axes"], keepdim=bool(a.get("keepdims", 1)))
        if op == "Transpose":
            return ins[0].permute(*a["perm"])
        if op == "Squeeze":
            x = ins[0]
            for ax in sorted(a["axes"], reverse=True):
                x = x.squeeze(ax)
            return x
        if op == "Unsqueeze":
            x = ins[0]
            for ax in sorted(a["axes"]):
                x = x.unsqueeze(ax)
            return x
        if op == "Shape":
            return torch.tensor(ins[0].shape, dtype=torch.int64)
        if op == "Cast":
            return ins[0].to(torch.int64 if a["to"] == 7 else torch.int32 if a["to"] == 6 else torch.float32)
        if op == "Slice":
            x, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else torch.arange(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else torch.ones(len(starts), dtype=torch.int64)
            idx = [slice(None)] * x.dim()
            for s, e, ax, st in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
                n = x.shape[ax]
                e = min(e, n) if e >= 0 else e
                idx[ax] = slice(s, e, st)
            return x[tuple(idx)]
        if op == "Concat":
            if not ins[0].is_floating_point():
                return torch.cat([t.to(torch.int64).reshape(-1) for t in ins])
            return torch.cat(ins, dim=a["axis"])
        if op == "Reshape":
            shape = [int(v) for v in ins[1].tolist()]
            shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            return ins[0].reshape(shape)
        raise NotImplementedError(f"ONNX operator {op} (node {node.name}) is not supported")
