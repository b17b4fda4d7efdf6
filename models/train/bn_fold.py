"""Undoing the exporter's BatchNorm folding, so that a released .onnx can be
fine-tuned without its checkpoint (`detector.from_onnx`,
`train_plate.from_onnx`).

The exporter folds each BatchNorm into the conv before it. `unfold` sets
the BatchNorm to the identity plus the folded bias (the conv gets the folded
weight back); `calibrate` then gives every BatchNorm the real statistics of
its input while keeping the function, so train mode (batch statistics)
starts from the released function too."""

from __future__ import annotations

import torch
import torch.nn as nn


def unfold(bn: nn.BatchNorm2d, bias: torch.Tensor):
    """In eval mode `bn` computes x + bias."""
    with torch.no_grad():
        bn.running_mean.zero_()
        bn.running_var.fill_(1 - bn.eps)
        bn.weight.fill_(1.0)
        bn.bias.copy_(bias)


def calibrate(model: nn.Module, calibration: torch.Tensor):
    """Sets each BatchNorm's running statistics to those of its input on
    `calibration` and its affine terms so that the function is unchanged.
    A BatchNorm called more than once (a head shared by several levels)
    gets the average over its calls, as the running statistics of training
    do."""
    stats = {}

    def record(bn, inp, out):
        z = inp[0]
        stats.setdefault(bn, []).append((z.mean((0, 2, 3)), z.var((0, 2, 3), unbiased=False)))

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    hooks = [bn.register_forward_hook(record) for bn in bns]
    with torch.no_grad():
        model(calibration)
        for h in hooks:
            h.remove()
        for bn in bns:
            mean = torch.stack([m for m, _ in stats[bn]]).mean(0)
            var = torch.stack([v for _, v in stats[bn]]).mean(0)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.bias.add_(mean)
            bn.weight.copy_((var + bn.eps).sqrt())
