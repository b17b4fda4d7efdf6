"""The detector: a small plain-conv backbone, a light PAN neck and
anchor-free heads at strides 8/16/32, trained with a task-aligned assigner,
IoU-aware BCE and GIoU loss. Plain 3x3 convs rather than depthwise ones:
at these widths they are as fast on CPU (ONNX Runtime and PyTorch alike)
and train faster."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import bn_fold

NUM_CLASSES = 5
STRIDES = (8, 16, 32)


def conv(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class Residual(nn.Module):
    """Two 3x3 convs with a skip: depth without losing the gradient path."""

    def __init__(self, c: int):
        super().__init__()
        self.a = conv(c, c)
        self.b = conv(c, c)

    def forward(self, x):
        return x + self.b(self.a(x))


class Backbone(nn.Module):
    """Five stride-2 stages. Most of the cost is at strides 2-8, so those
    stay narrow; depth is spent at strides 16 and 32 where it is cheap."""

    def __init__(self, widths=(16, 24, 48, 64, 96)):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(conv(3, w0, 3, 2), conv(w0, w1, 3, 2))  # stride 4
        self.s8 = nn.Sequential(conv(w1, w2, 3, 2), conv(w2, w2))
        self.s16 = nn.Sequential(conv(w2, w3, 3, 2), Residual(w3))
        self.s32 = nn.Sequential(conv(w3, w4, 3, 2), Residual(w4))

    def forward(self, x):
        x = self.stem(x)
        p3 = self.s8(x)
        p4 = self.s16(p3)
        p5 = self.s32(p4)
        return p3, p4, p5


class Neck(nn.Module):
    """PAN-lite: top-down then bottom-up, additions instead of concatenations."""

    def __init__(self, cin=(48, 64, 96), c: int = 32):
        super().__init__()
        self.l3, self.l4, self.l5 = (conv(ci, c, 1) for ci in cin)
        self.td4, self.td3 = conv(c, c), conv(c, c)
        self.down3, self.down4 = conv(c, c, 3, 2), conv(c, c, 3, 2)
        self.bu4, self.bu5 = conv(c, c), conv(c, c)

    def forward(self, p3, p4, p5):
        p5 = self.l5(p5)
        t4 = self.td4(self.l4(p4) + F.interpolate(p5, scale_factor=2.0, mode="nearest"))
        n3 = self.td3(self.l3(p3) + F.interpolate(t4, scale_factor=2.0, mode="nearest"))
        n4 = self.bu4(t4 + self.down3(n3))
        n5 = self.bu5(p5 + self.down4(n4))
        return n3, n4, n5


class Head(nn.Module):
    """Decoupled head shared across levels: class scores and ltrb distances."""

    def __init__(self, c: int = 32, num_classes: int = NUM_CLASSES):
        super().__init__()
        # One shared 3x3 conv then two 1x1 outputs: a full decoupled head
        # would double the cost at stride 8, the most expensive level.
        self.stem = conv(c, 2 * c)
        self.cls = nn.Conv2d(2 * c, num_classes, 1)
        self.reg = nn.Conv2d(2 * c, 4, 1)
        # Start with a low prior so the many background points do not
        # swamp the first steps.
        nn.init.constant_(self.cls.bias, -4.6)
        nn.init.constant_(self.reg.bias, 0.5)
        # One learnable scale per level for the box distances.
        self.scales = nn.Parameter(torch.ones(len(STRIDES)))

    def forward(self, feats):
        cls, reg = [], []
        for i, f in enumerate(feats):
            f = self.stem(f)
            cls.append(self.cls(f).flatten(2))
            reg.append((self.reg(f) * self.scales[i]).flatten(2))
        return torch.cat(cls, 2), torch.cat(reg, 2)  # [B,C,N], [B,4,N]


class Detector(nn.Module):
    def __init__(self, widths=(16, 24, 48, 64, 96), neck: int = 32):
        super().__init__()
        self.backbone = Backbone(widths)
        self.neck = Neck(widths[2:], neck)
        self.head = Head(neck)

    def forward(self, x):
        """Raw outputs: class logits [B,C,N] and ltrb in strides [B,4,N]
        (after softplus), N over the three levels, row-major per level."""
        cls, reg = self.head(self.neck(*self.backbone(x)))
        return cls, F.softplus(reg)


def anchor_points(height: int, width: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of all output cells in input pixels [N,2] and their stride [N]."""
    pts, strides = [], []
    for s in STRIDES:
        h, w = height // s, width // s
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        pts.append(torch.stack([xs, ys], -1).reshape(-1, 2).float().add(0.5).mul(s))
        strides.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(pts), torch.cat(strides)


def decode_boxes(ltrb: torch.Tensor, points: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """[B,4,N] ltrb in strides to [B,N,4] x1y1x2y2 in pixels."""
    d = ltrb.transpose(1, 2) * strides[None, :, None]
    p = points[None]
    return torch.cat([p - d[..., :2], p + d[..., 2:]], -1)


class ExportWrapper(nn.Module):
    """The shipped graph: ultralytics YOLOv8 layout [B, 4+C, N] with rows
    cx, cy, w, h in input pixels, then class scores through a sigmoid."""

    def __init__(self, model: Detector, height: int, width: int):
        super().__init__()
        self.model = model
        points, strides = anchor_points(height, width)
        self.register_buffer("points", points.t().contiguous()[None])  # [1,2,N]
        self.register_buffer("strides", strides[None, None])  # [1,1,N]

    def forward(self, images):
        cls, ltrb = self.model(images)
        d = ltrb * self.strides
        x1y1 = self.points - d[:, :2]
        x2y2 = self.points + d[:, 2:]
        return torch.cat([(x1y1 + x2y2) * 0.5, x2y2 - x1y1, cls.sigmoid()], 1)


# ---------------------------------------------------------------- loss


def box_iou_pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of x1y1x2y2 boxes broadcast over leading dims."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter + 1e-9)


def giou_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    iou = box_iou_pairwise(a, b)
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    hull = (rb - lt).clamp(min=0).prod(-1) + 1e-9
    inter_union = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1) + (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    union = inter_union / (1 + iou)  # area_a + area_b - inter, from the IoU identity
    return 1 - iou + (hull - union) / hull


@torch.no_grad()
def assign(scores, boxes, points, strides, gt_boxes, gt_cls, gt_valid, topk: int = 10, alpha=0.5, beta=6.0):
    """Task-aligned assignment (as in TOOD / YOLOv8).

    scores [B,N,C] sigmoid, boxes [B,N,4] predicted x1y1x2y2, gt_boxes
    [B,G,4], gt_cls [B,G] long, gt_valid [B,G] bool. Candidates of a ground
    truth are points inside its box, widened to at least 2.5 strides so
    plates a few pixels high still get points. Returns per point: target
    class [B,N], target box [B,N,4], soft target score [B,N] (0 for
    background) and a foreground mask.
    """
    B, N, C = scores.shape
    G = gt_boxes.shape[1]
    if G == 0:
        z = torch.zeros(B, N, device=scores.device)
        return torch.zeros(B, N, dtype=torch.long), torch.zeros(B, N, 4), z, z.bool()
    centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2  # [B,G,2]
    half = (gt_boxes[..., 2:] - gt_boxes[..., :2]) / 2
    half = torch.maximum(half[:, :, None, :], 1.25 * strides[None, None, :, None])  # [B,G,N,2]
    inside = ((points[None, None] - centre[:, :, None]).abs() < half).all(-1) & gt_valid[..., None]
    cls_score = scores.gather(2, gt_cls[:, None, :].expand(B, N, G)).transpose(1, 2)  # [B,G,N]
    iou = box_iou_pairwise(gt_boxes[:, :, None, :], boxes[:, None, :, :]).clamp(min=0)  # [B,G,N]
    align = cls_score.pow(alpha) * iou.pow(beta) * inside
    # Small boost by centre distance so the first steps (random boxes) still
    # pick central points.
    dist = (points[None, None] - centre[:, :, None]).norm(dim=-1) / strides[None, None]
    align_sel = align + inside * 1e-6 / (1 + dist)
    k = min(topk, N)
    top = align_sel.topk(k, dim=-1).indices
    mask = torch.zeros_like(align_sel, dtype=torch.bool).scatter_(-1, top, True) & inside
    # A point claimed by several ground truths goes to the best IoU.
    multi = mask.sum(1) > 1  # [B,N]
    if multi.any():
        best = (iou * mask).argmax(1)  # [B,N]
        one = F.one_hot(best, G).transpose(1, 2).bool()
        mask = torch.where(multi[:, None], one & mask, mask)
    fg = mask.any(1)  # [B,N]
    gt_idx = mask.float().argmax(1)  # [B,N]
    t_cls = gt_cls.gather(1, gt_idx)
    t_box = gt_boxes.gather(1, gt_idx[..., None].expand(B, N, 4))
    # Normalise alignment per ground truth so its best point reaches its best IoU.
    align = align * mask
    norm = align.amax(-1, keepdim=True) + 1e-9
    best_iou = (iou * mask).amax(-1, keepdim=True)
    t_score = (align / norm * best_iou).amax(1)  # [B,N]
    return t_cls, t_box, t_score * fg, fg


def detection_loss(cls_logits, ltrb, points, strides, targets, box_weight=7.5):
    """targets: dict with boxes [B,G,4] x1y1x2y2, cls [B,G], valid [B,G],
    ignore [B,N] bool (points with no negative loss) and vehicle_mask [B]
    (False on photos labelled for plates only)."""
    scores_logit = cls_logits.transpose(1, 2)  # [B,N,C]
    boxes = decode_boxes(ltrb, points, strides)
    t_cls, t_box, t_score, fg = assign(
        scores_logit.detach().sigmoid(), boxes.detach(), points, strides, targets["boxes"], targets["cls"], targets["valid"]
    )
    B, N, C = scores_logit.shape
    target = torch.zeros_like(scores_logit)
    target.scatter_(2, t_cls[..., None], t_score[..., None])
    weight = torch.ones_like(scores_logit)
    weight[targets["ignore"] & ~fg] = 0.0
    no_vehicles = ~targets["vehicle_mask"]
    if no_vehicles.any():
        weight[no_vehicles, :, :4] = 0.0
    bce = F.binary_cross_entropy_with_logits(scores_logit, target, reduction="none") * weight
    norm = max(t_score.sum().item(), 1.0)
    loss_cls = bce.sum() / norm
    if fg.any():
        w = t_score[fg]
        loss_box = (giou_loss(boxes[fg], t_box[fg]) * w).sum() / norm
    else:
        loss_box = boxes.sum() * 0
    return loss_cls + box_weight * loss_box, {"cls": loss_cls.item(), "box": loss_box.item(), "fg": int(fg.sum())}


# ---------------------------------------------------------------- resuming from a shipped model


def from_onnx(path, calibration: torch.Tensor) -> Detector:
    """Rebuilds a trainable Detector from an ONNX file that `export_onnx`
    wrote, so a released model can be fine-tuned without its checkpoint.

    The conv gets the exporter's folded weight back, and its BatchNorm is
    unfolded and calibrated on `calibration` (a batch of training views) as
    `bn_fold` describes, so the first steps start from the released
    function."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    scale_names = [n.input[1] for n in graph.node if n.op_type == "Mul" and n.input[1] in inits and n.input[1] != "strides"]
    model = Detector().eval()
    # Conv modules in call order; the shared head stem is called once per level.
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(m)) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(calibration[:1])
    for h in hooks:
        h.remove()
    if len(calls) != len(convs):
        raise ValueError(f"{path}: {len(convs)} Conv nodes, the Detector makes {len(calls)} conv calls: not a detector of this architecture")
    bn_of = {}
    for m in model.modules():
        if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.Conv2d) and isinstance(m[1], nn.BatchNorm2d):
            bn_of[m[0]] = m[1]
    seen = set()
    with torch.no_grad():
        for m, node in zip(calls, convs):
            if m in seen:
                continue
            seen.add(m)
            w, b = inits[node.input[1]], inits[node.input[2]]
            if w.shape != m.weight.shape:
                raise ValueError(f"{path}: {node.name} has weight {tuple(w.shape)}, the Detector expects {tuple(m.weight.shape)}")
            m.weight.copy_(w)
            bn = bn_of.get(m)
            if bn is None:
                m.bias.copy_(b)
            else:
                bn_fold.unfold(bn, b)
        for i, name in enumerate(scale_names):
            model.head.scales[i] = inits[name].reshape(())
    # Real statistics of each BatchNorm's input, then the same function.
    bn_fold.calibrate(model, calibration)
    return model
