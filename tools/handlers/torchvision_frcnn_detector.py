"""Handler: a torchvision Faster R-CNN detector -> two dense StableHLO bundles and a meta bundle.

Entry point (the handler API, docs/converter.md): plan(model, options, ctx) -> ModelPlan.

Why the split: the backbone and the heads are static tensor math that torch.export traces; the
middle of torchvision's GeneralizedRCNN (anchor generation, proposal selection and NMS, ROIAlign,
box decoding, the final per-class NMS) depends on the data and cannot be one static graph. So:
  <model>_stage1  backbone + rpn.head, with the ImageNet normalisation baked in: INPUT__0 float32
                  [1,3,H,W] in [0, 1] -> feat_* (the maps ROI pooling reads), obj_*, delta_* (per
                  RPN level). One program per compiled input shape, one shared weights file.
  <model>_stage2  roi_heads.box_head + box_predictor over K = rpn_post_nms_top_n_test ROIs:
                  ROI_FEATS [K,256,7,7] -> cls_logits [K,C], bbox_deltas [K,C*4].
  <model>         the meta bundle: group = the two stages; model.c takes the client's image
                  (u8, or f32 in [0, 1]: input_dtype) of any size, letterboxes it into the best
                  compiled shape the way torchvision's GeneralizedRCNNTransform resizes and pads,
                  runs stage1, the glue (DetectionGlue), stage2, and maps the boxes back to the
                  client's pixels; every constant read from the live model is baked in.
Why stage1 takes float32 in [0, 1] whatever input_dtype says: torchvision resizes the normalised
float image and pads it with zeros after normalisation, i.e. with the ImageNet mean in [0, 1]
units; neither the resized values nor the mean are bytes, so the wrapper works in float and the
client-facing dtype (input_dtype) is the meta's alone.
Both stages are plain nn.Modules wrapping the live model's own submodules, so the safetensors
keys are torchvision's state_dict keys (plus transform.image_mean/std for the normalisation).

plan() validates options without importing torch (dry runs stay fast); build() does the work.
Options left unset (the post-processing knobs) take torchvision's default for the chosen arch,
read back from the built model, so the meta bundle records the values actually in force.
"""
from __future__ import annotations

import math
from pathlib import Path

from hloserve_export import api
from hloserve_export.api import OptionError

HANDLER_VERSION = 3  # 2: stage1 takes float32 [0, 1]; the meta letterboxes any image size
# 3: the meta's DetectionGlue uses the worker's intra-op threads (hs_meta_threads)

ARCHS = ["resnet50_fpn", "resnet50_fpn_v2", "mobilenet_v3_large_fpn",
         "mobilenet_v3_large_320_fpn"]

# Archs whose pretrained model uses FrozenBatchNorm2d (torchvision builds those with
# FrozenBatchNorm2d when weights are given and with BatchNorm2d otherwise; we always build the
# pretrained structure so that a saved state_dict of the pretrained model loads, and so that
# "none" has the same structure as DEFAULT).
_FROZEN_BN_ARCHS = {"resnet50_fpn", "mobilenet_v3_large_fpn", "mobilenet_v3_large_320_fpn"}

# A state_dict key that only the arch's structure has; catches a .pth of another arch early.
_ARCH_SIGNATURE = {
    "resnet50_fpn": ["backbone.body.conv1.weight", "roi_heads.box_head.fc6.weight"],
    "resnet50_fpn_v2": ["backbone.body.conv1.weight", "roi_heads.box_head.0.0.weight"],
    "mobilenet_v3_large_fpn": ["backbone.body.0.0.weight", "roi_heads.box_head.fc6.weight"],
    "mobilenet_v3_large_320_fpn": ["backbone.body.0.0.weight", "roi_heads.box_head.fc6.weight"],
}
_CLS_KEY = "roi_heads.box_predictor.cls_score.weight"

# Post-processing knobs: option name -> torchvision FasterRCNN keyword. None = arch default.
_KNOBS = {
    "box_score_thresh": ("float", 0.0, 1.0),
    "box_nms_thresh": ("float", 0.0, 1.0),
    "box_detections_per_img": ("int", 1, 100000),
    "rpn_pre_nms_top_n_test": ("int", 1, 1000000),
    "rpn_post_nms_top_n_test": ("int", 1, 100000),
    "rpn_nms_thresh": ("float", 0.0, 1.0),
    "rpn_score_thresh": ("float", 0.0, 1.0),
}

OPTIONS = {
    "arch": "resnet50_fpn",
    "weights": "DEFAULT",
    "num_classes": 91,
    "image_size": 640,
    "input_dtype": "u8",
    "output_cols": 6,
    "input_shapes": None,
    "seed": 0,
    **{k: None for k in _KNOBS},
}

# The largest client image edge the meta accepts (the server's --max-request-bytes bounds the
# area; this bounds the letterbox's index arithmetic and the error message's promise).
MAX_INPUT_EDGE = 1 << 15
INPUT_NAME = "INPUT__0"
OUTPUT_NAME = "OUTPUT__0"
MAX_EDGE = 4096


def _edge(option: str, v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise OptionError(option, f"{what} must be an integer, got {v!r}")
    if v < 64 or v > MAX_EDGE:
        raise OptionError(option, f"{what} {v} is outside 64..{MAX_EDGE}")
    if v % 64:
        raise OptionError(option, f"{what} {v} is not divisible by 64 (the FPN's coarsest level "
                                  "needs it)")
    return v


def _validate(options: dict) -> dict:
    for key in options:
        if key not in OPTIONS:
            raise OptionError(key, f"unknown option (known: {', '.join(OPTIONS)})")
    o = {}
    o["arch"] = api.take_choice(options, "arch", OPTIONS["arch"], ARCHS)

    w = options.get("weights", "DEFAULT")
    if w is None or (isinstance(w, str) and w.lower() == "none"):
        o["weights"] = "none"
    elif isinstance(w, str) and w.upper() == "DEFAULT":
        o["weights"] = "DEFAULT"
    elif isinstance(w, (str, Path)) and str(w):
        o["weights"] = Path(w)
    else:
        raise OptionError("weights", f"must be DEFAULT, none or a path to a state_dict .pth; "
                                     f"got {w!r}")

    o["num_classes"] = api.take_int(options, "num_classes", 91, minimum=2, maximum=100000)
    if "image_size" in options or not options.get("input_shapes"):
        o["image_size"] = _edge("image_size", options.get("image_size", 640), "image_size")
    else:
        o["image_size"] = None
    o["input_dtype"] = api.take_choice(options, "input_dtype", "u8", ["u8", "f32"])
    cols = options.get("output_cols", 6)
    if isinstance(cols, bool) or cols not in (5, 6):
        raise OptionError("output_cols", f"must be 5 ([box4, score]) or 6 ([box4, score, "
                                         f"class]); got {cols!r}")
    o["output_cols"] = cols
    o["seed"] = api.take_int(options, "seed", 0, minimum=0, maximum=2**63 - 1)

    shapes = options.get("input_shapes")
    if shapes is None:
        o["input_shapes"] = [[o["image_size"], o["image_size"]]]
    else:
        if not isinstance(shapes, list) or not shapes:
            raise OptionError("input_shapes", "must be a non-empty list of [W, H] pairs")
        seen = []
        for i, s in enumerate(shapes):
            if not isinstance(s, (list, tuple)) or len(s) != 2:
                raise OptionError("input_shapes", f"entry {i} must be a [W, H] pair, got {s!r}")
            wh = [_edge("input_shapes", s[0], f"entry {i} width"),
                  _edge("input_shapes", s[1], f"entry {i} height")]
            if wh in seen:
                raise OptionError("input_shapes", f"entry {i} {wh} is listed twice")
            seen.append(wh)
        if o["image_size"] is not None and [o["image_size"]] * 2 not in seen:
            seen.insert(0, [o["image_size"]] * 2)
        o["input_shapes"] = seen

    for key, (kind, lo, hi) in _KNOBS.items():
        if kind == "int":
            o[key] = api.take_int(options, key, None, minimum=lo, maximum=hi) \
                if options.get(key) is not None else None
        else:
            o[key] = api.take_float(options, key, None, minimum=lo, maximum=hi)

    if o["weights"] == "DEFAULT" and o["num_classes"] != 91:
        raise OptionError("num_classes", f"is {o['num_classes']} but weights DEFAULT is the COCO "
                                         "model with 91 classes; pass your own state_dict .pth "
                                         "as weights for another head")
    if isinstance(o["weights"], Path):
        _check_state_dict(o)
    return o


def _check_state_dict(o: dict) -> None:
    from hloserve_export.pth import PthError, read_state_dict_shapes

    path = o["weights"]
    if not path.exists():
        raise OptionError("weights", f"file {path} does not exist")
    if not path.is_file():
        raise OptionError("weights", f"{path} is not a file")
    try:
        shapes = read_state_dict_shapes(path)
    except PthError as e:
        raise OptionError("weights", f"{path} {e}") from None
    missing = [k for k in _ARCH_SIGNATURE[o["arch"]] if k not in shapes]
    if missing:
        raise OptionError("arch", f"is {o['arch']} but the state_dict {path} does not look like "
                                  f"one (no {missing[0]})")
    if _CLS_KEY not in shapes:
        raise OptionError("weights", f"{path} has no {_CLS_KEY}: not a Faster R-CNN state_dict")
    n = shapes[_CLS_KEY].shape[0] if shapes[_CLS_KEY].shape else None
    if n != o["num_classes"]:
        raise OptionError("num_classes", f"is {o['num_classes']} but the state_dict's head "
                                         f"({_CLS_KEY} in {path}) has {n} classes")


def plan(model: str, options: dict, ctx: api.HandlerContext) -> api.ModelPlan:
    """The handler entry point: validates `options` for `model` and returns what build() makes."""
    o = _validate(dict(options))
    names = {"stage1": f"{model}_stage1", "stage2": f"{model}_stage2", "meta": model}
    fp = {"handler_version": HANDLER_VERSION,
          **{k: (str(v) if isinstance(v, Path) else v) for k, v in o.items()}}
    if isinstance(o["weights"], Path):
        fp["weights_file"] = api.file_stamp(o["weights"])
    shapes = ", ".join(f"{w}x{h}" for w, h in o["input_shapes"])
    w = o["weights"] if not isinstance(o["weights"], Path) else o["weights"].name
    summary = f"{o['arch']}, weights {w}, {o['num_classes']} classes, {o['input_dtype']} {shapes}"

    def build(dirs):
        _build(model, o, names, dirs, ctx)

    return api.ModelPlan(bundles=[names["stage1"], names["stage2"], names["meta"]],
                         build=build, fingerprint=fp, summary=summary)


# ---------------------------------------------------------------------------------------------
# Everything below runs only in a real conversion and may import torch.

def build_model(o: dict):
    """The torchvision detector in eval mode, as the options describe (no export)."""
    import torch
    import torchvision
    from torchvision.models import detection as D
    from torchvision.ops import misc as misc_ops

    from hloserve_export.pth import unwrap_state_dict

    builders = {
        "resnet50_fpn": D.fasterrcnn_resnet50_fpn,
        "resnet50_fpn_v2": D.fasterrcnn_resnet50_fpn_v2,
        "mobilenet_v3_large_fpn": D.fasterrcnn_mobilenet_v3_large_fpn,
        "mobilenet_v3_large_320_fpn": D.fasterrcnn_mobilenet_v3_large_320_fpn,
    }
    builder = builders[o["arch"]]
    kwargs = {k: o[k] for k in _KNOBS if o.get(k) is not None}
    torch.manual_seed(o["seed"])

    if o["weights"] == "DEFAULT":
        try:
            model = builder(weights="DEFAULT", **kwargs)
        except Exception as e:  # offline, proxy, corrupt cache...
            enum = torchvision.models.get_model_weights(builder).DEFAULT
            fname = enum.url.rsplit("/", 1)[-1]
            hub = Path(torch.hub.get_dir()) / "checkpoints"
            raise api.BuildError(
                f"DEFAULT could not get torchvision's pretrained {o['arch']} weights "
                f"({type(e).__name__}: {str(e)[:200]}). Without internet access, fetch "
                f"{enum.url} elsewhere and either put it at {hub / fname} or pass its path as "
                f"weights: /path/to/{fname} (any torch.save'd state_dict works)",
                option="weights") from None
        return model.eval()

    model = builder(weights=None, weights_backbone=None, num_classes=o["num_classes"], **kwargs)
    if o["arch"] in _FROZEN_BN_ARCHS:
        _freeze_batchnorm(model, torch, misc_ops.FrozenBatchNorm2d)
    if isinstance(o["weights"], Path):
        try:
            sd = unwrap_state_dict(torch.load(o["weights"], map_location="cpu",
                                              weights_only=True))
            # BatchNorm's num_batches_tracked counter is unused at eval time; a state_dict saved
            # from a FrozenBatchNorm2d model lacks it (and vice versa). Any other difference is
            # an error.
            res = model.load_state_dict(sd, strict=False)
            missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
            unexpected = [k for k in res.unexpected_keys
                          if not k.endswith("num_batches_tracked")]
            if missing or unexpected:
                raise RuntimeError(f"missing keys {missing[:5]}, unexpected keys "
                                   f"{unexpected[:5]}")
        except Exception as e:
            raise api.BuildError(f"{o['weights']} does not load into {o['arch']} with "
                                 f"{o['num_classes']} classes: {str(e)[:600]}",
                                 option="weights") from None
    return model.eval()


def _freeze_batchnorm(module, torch, frozen_cls) -> None:
    """Replaces every BatchNorm2d by FrozenBatchNorm2d (eps 1e-5, as torchvision's pretrained
    builders use), carrying the statistics over."""
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.BatchNorm2d):
            f = frozen_cls(child.num_features, eps=1e-5)
            with torch.no_grad():
                f.weight.copy_(child.weight)
                f.bias.copy_(child.bias)
                f.running_mean.copy_(child.running_mean)
                f.running_var.copy_(child.running_var)
            setattr(module, name, f)
        else:
            _freeze_batchnorm(child, torch, frozen_cls)


def make_stages(model):
    """(stage1, stage2) nn.Modules wrapping the live model's submodules (shared, not copied).
    stage1 takes a float32 image in [0, 1] (the meta converts u8 input and letterboxes)."""
    import torch
    from torch import nn

    # torchvision's MultiScaleRoIAlign pools the backbone maps named in featmap_names, in the
    # backbone's order; mobilenet backbones have fewer maps than the default four names. The
    # backbone's keys are static, so one tiny eager call finds them.
    pool_names = set(model.roi_heads.box_roi_pool.featmap_names)
    with torch.no_grad():
        keys = list(model.backbone(torch.zeros((1, 3, 64, 64))).keys())
    pooled_keys = [k for k in keys if k in pool_names]

    class Stage1(nn.Module):
        def __init__(self):
            super().__init__()
            self.transform = nn.Module()
            self.transform.register_buffer(
                "image_mean", torch.tensor(model.transform.image_mean,
                                           dtype=torch.float32).view(1, 3, 1, 1))
            self.transform.register_buffer(
                "image_std", torch.tensor(model.transform.image_std,
                                          dtype=torch.float32).view(1, 3, 1, 1))
            self.backbone = model.backbone
            self.rpn = nn.Module()
            self.rpn.head = model.rpn.head
            self.pooled_keys = pooled_keys

        def forward(self, image):
            x = (image - self.transform.image_mean) / self.transform.image_std
            features = self.backbone(x)
            objectness, deltas = self.rpn.head(list(features.values()))
            pooled = tuple(features[k] for k in self.pooled_keys)
            return pooled + tuple(objectness) + tuple(deltas)

    class Stage2(nn.Module):
        def __init__(self):
            super().__init__()
            self.roi_heads = nn.Module()
            self.roi_heads.box_head = model.roi_heads.box_head
            self.roi_heads.box_predictor = model.roi_heads.box_predictor

        def forward(self, roi_feats):
            x = self.roi_heads.box_head(roi_feats)
            cls_logits, bbox_deltas = self.roi_heads.box_predictor(x)
            return cls_logits, bbox_deltas

    return Stage1().eval(), Stage2().eval()


def stage_io_names(model, n_stage1_outputs: int) -> tuple[list[str], list[str]]:
    """Output names of stage1 (feat_*, obj_*, delta_*) and stage2."""
    n_lvl = len(model.rpn.anchor_generator.sizes)
    n_pool = n_stage1_outputs - 2 * n_lvl
    s1 = ([f"feat_{i}" for i in range(n_pool)] + [f"obj_{i}" for i in range(n_lvl)]
          + [f"delta_{i}" for i in range(n_lvl)])
    return s1, ["cls_logits", "bbox_deltas"]


def example_image(w: int, h: int):
    """stage1's example input: float32 [1, 3, H, W] (values in [0, 1])."""
    import torch
    return torch.zeros((1, 3, h, w), dtype=torch.float32)


def _build(model_name: str, o: dict, names: dict, dirs, ctx: api.HandlerContext) -> None:
    import torch

    from hloserve_export import bundle, lower

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    model = build_model(o)
    stage1, stage2 = make_stages(model)

    # stage1: one program per input shape, one weight set.
    programs, params, weights, s1_shapes = [], None, None, []
    multi = len(o["input_shapes"]) > 1
    for w, h in o["input_shapes"]:
        ctx.log(f"  {names['stage1']}: exporting {w}x{h}")
        low = lower.export_module(stage1, (example_image(w, h),))
        s1_out, s2_out = stage_io_names(model, len(low.output_shapes))
        if params is None:
            params, weights = low.params, low.weights
        elif low.params != params:
            raise lower.LoweringError("stage1 programs for different shapes bind different "
                                      "weights")
        programs.append({
            "file": f"model_{w}x{h}.mlir" if multi else "model.mlir",
            "text": low.text,
            "inputs": [bundle.tensor_spec(INPUT_NAME, low.input_dtypes[0], low.input_shapes[0])],
            "outputs": [bundle.tensor_spec(n, d, s) for n, d, s in
                        zip(s1_out, low.output_dtypes, low.output_shapes)],
        })
        s1_shapes.append((w, h, dict(zip(s1_out, low.output_shapes))))
    bundle.write_dense_bundle(dirs[names["stage1"]], name=names["stage1"], programs=programs,
                              params=params, weights=weights)

    # stage2: K ROIs of pooled features.
    K = int(model.rpn._post_nms_top_n["testing"])
    pool = model.roi_heads.box_roi_pool
    out_size = _pair(pool.output_size)
    channels = int(model.backbone.out_channels)
    ctx.log(f"  {names['stage2']}: exporting K={K}")
    roi = torch.zeros((K, channels, out_size[0], out_size[1]), dtype=torch.float32)
    low = lower.export_module(stage2, (roi,))
    bundle.write_dense_bundle(dirs[names["stage2"]], name=names["stage2"], programs=[{
        "file": "model.mlir", "text": low.text,
        "inputs": [bundle.tensor_spec("ROI_FEATS", low.input_dtypes[0], low.input_shapes[0])],
        "outputs": [bundle.tensor_spec(n, d, s) for n, d, s in
                    zip(s2_out, low.output_dtypes, low.output_shapes)],
    }], params=low.params, weights=low.weights)

    # meta
    config = meta_config(model, o, names, s1_shapes, stage1.pooled_keys)
    in_dtype = "UINT8" if o["input_dtype"] == "u8" else "FP32"
    # The meta letterboxes any image size into one of the compiled shapes: H and W are free.
    in_shape = [1, 3, -1, -1]
    bundle.write_meta_bundle(
        dirs[names["meta"]], name=model_name, group=[names["stage1"], names["stage2"]],
        inputs=[{"name": INPUT_NAME, "datatype": in_dtype, "shape": in_shape}],
        outputs=[{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, o["output_cols"]]}],
        source_file="model.c", source_text=render_model_c(model_name, config), config=config)


def _pair(v) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    return [int(v[0]), int(v[1])]


def _floats(t) -> list:
    return [float(x) for x in t]


def meta_config(model, o: dict, names: dict, s1_shapes, pooled_keys: list[str]) -> dict:
    """Every constant the glue needs, read from the live model (see docs/bundles.md)."""
    import torch

    rpn, roi = model.rpn, model.roi_heads
    ag = rpn.anchor_generator
    pool = roi.box_roi_pool
    n_lvl = len(ag.sizes)
    n_pool = len(pooled_keys)
    channels = int(model.backbone.out_channels)

    # cell anchors exactly as torchvision computed them (rounded, float32)
    cell = [[_floats(row) for row in a.to(torch.float32)] for a in ag.cell_anchors]

    image_shapes = []
    scales_seen = None
    for w, h, out_shapes in s1_shapes:
        grids = [out_shapes[f"obj_{i}"][2:] for i in range(n_lvl)]
        # torchvision: stride = image_size // grid_size, per dimension (integer division)
        strides = [[h // g[0], w // g[1]] for g in grids]
        # ROI pooler scales and level mapper, computed by torchvision's own pooler on this shape
        feats = {k: torch.zeros(out_shapes[f"feat_{i}"]) for i, k in enumerate(pooled_keys)}
        pool.scales, pool.map_levels = None, None
        with torch.no_grad():
            pool(feats, [torch.tensor([[0.0, 0.0, 8.0, 8.0]])], [(h, w)])
        scales = [float(s) for s in pool.scales]
        if scales_seen is not None and scales != scales_seen:
            raise ValueError("ROI pooler scales differ between input shapes")
        scales_seen = scales
        image_shapes.append({
            "width": w, "height": h,
            "grid_sizes": [list(g) for g in grids],
            "strides": strides,
            "feature_shapes": [list(out_shapes[f"feat_{i}"]) for i in range(n_pool)],
        })
    lm = pool.map_levels

    return {
        "arch": o["arch"],
        "stage1": names["stage1"],
        "stage2": names["stage2"],
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_dtype": o["input_dtype"],
        "stage1_input_dtype": "f32",
        # GeneralizedRCNNTransform's normalisation (stage1 applies it); the letterbox pads with
        # the mean, which is torchvision's zero padding after normalisation
        "image_mean": [float(torch.tensor(v, dtype=torch.float32)) for v in model.transform.image_mean],
        "image_std": [float(torch.tensor(v, dtype=torch.float32)) for v in model.transform.image_std],
        "output_cols": o["output_cols"],
        "num_classes": int(roi.box_predictor.cls_score.out_features),
        "image_shapes": image_shapes,
        "rpn": {
            "num_levels": n_lvl,
            "objectness_names": [f"obj_{i}" for i in range(n_lvl)],
            "delta_names": [f"delta_{i}" for i in range(n_lvl)],
            "anchor_sizes": [[int(s) for s in sz] for sz in ag.sizes],
            "aspect_ratios": [_floats(r) for r in ag.aspect_ratios],
            "cell_anchors": cell,
            "box_coder_weights": _floats(rpn.box_coder.weights),
            "bbox_xform_clip": float(rpn.box_coder.bbox_xform_clip),
            "pre_nms_top_n": int(rpn._pre_nms_top_n["testing"]),
            "post_nms_top_n": int(rpn._post_nms_top_n["testing"]),
            "nms_thresh": float(rpn.nms_thresh),
            "score_thresh": float(rpn.score_thresh),
            "min_size": float(rpn.min_size),
        },
        "roi": {
            "K": int(rpn._post_nms_top_n["testing"]),
            "feature_names": [f"feat_{i}" for i in range(n_pool)],
            "channels": channels,
            "output_size": _pair(pool.output_size),
            "sampling_ratio": int(pool.sampling_ratio),
            "aligned": False,
            "scales": scales_seen,
            "level_mapper": {
                "k_min": int(lm.k_min), "k_max": int(lm.k_max),
                "canonical_scale": int(lm.s0), "canonical_level": int(lm.lvl0),
                "eps": float(lm.eps),
            },
        },
        "box": {
            "box_coder_weights": _floats(roi.box_coder.weights),
            "bbox_xform_clip": float(roi.box_coder.bbox_xform_clip),
            "score_thresh": float(roi.score_thresh),
            "nms_thresh": float(roi.nms_thresh),
            "detections_per_img": int(roi.detections_per_img),
            # torchvision's postprocess_detections drops boxes under 1e-2 px (hard-coded there)
            "min_size": 1e-2,
            "bg_first": True,
        },
    }


def _cf(v: float) -> str:
    """A float32 C literal that reads back exactly (Python's repr is the shortest round trip)."""
    r = repr(float(v))
    return (r if ("." in r or "e" in r) else r + ".0") + "f"


def _cd(v: float) -> str:
    r = repr(float(v))
    return r if ("." in r or "e" in r) else r + ".0"


def _cstr(v: str) -> str:
    if any(c in v for c in '"\\\n') or not v.isprintable():
        raise ValueError(f"name {v!r} cannot be a C string literal here")
    return f'"{v}"'


def glue_limits(config: dict) -> dict:
    """Capacity limits for the DetectionGlue workspace: the largest work any request can need."""
    rpn, roi = config["rpn"], config["roi"]
    C = config["num_classes"]
    max_level, max_select = 0, 0
    for shp in config["image_shapes"]:
        per_level = [g[0] * g[1] * len(a) for g, a in zip(shp["grid_sizes"], rpn["cell_anchors"])]
        max_level = max(max_level, max(per_level))
        max_select = max(max_select, sum(min(rpn["pre_nms_top_n"], n) for n in per_level))
    return {"max_boxes": max(max_select, roi["K"] * (C - 1)), "max_level_anchors": max_level,
            "max_classes": C}


def render_model_c(model_name: str, config: dict) -> str:
    """The meta bundle's model.c: the spec's orchestration against include/hloserve/meta.h and
    include/hloserve/detection_glue.h, with every constant from `config` (meta_config) baked in.
    This one function is the whole template; change it here when either API changes."""
    rpn, roi, box = config["rpn"], config["roi"], config["box"]
    lm = roi["level_mapper"]
    # hs_glue_multiscale_roi_align uses torchvision's default level mapper; refuse anything else
    if (lm["canonical_scale"], lm["canonical_level"], lm["eps"]) != (224, 4, 1e-6):
        raise ValueError(f"unsupported ROI level mapper {lm}")
    if roi["aligned"]:
        raise ValueError("aligned ROIAlign is not used by torchvision's detectors")
    L = rpn["num_levels"]
    P = len(roi["feature_names"])
    shapes = config["image_shapes"]
    limits = glue_limits(config)
    in_dtype = "HS_U8" if config["input_dtype"] == "u8" else "HS_F32"

    def ilist(v):
        return "{" + ", ".join(str(int(x)) for x in v) + "}"

    shape_rows = []
    for shp in shapes:
        grid = ", ".join(ilist(g) for g in shp["grid_sizes"])
        stride = ", ".join(ilist(st) for st in shp["strides"])
        shape_rows.append(f"    {{{shp['width']}, {shp['height']}, {{{grid}}}, {{{stride}}}}},")
    shapes_text = ", ".join(f"{s['width']}x{s['height']}" for s in shapes)
    cells = []
    for lvl, anchors in enumerate(rpn["cell_anchors"]):
        rows = "\n".join("    {" + ", ".join(_cf(x) for x in a) + "}," for a in anchors)
        cells.append(f"static const float CELL_ANCHORS_{lvl}[{len(anchors)}][4] = {{\n{rows}\n}};")
    names = lambda vs: "{" + ", ".join(_cstr(v) for v in vs) + "}"  # noqa: E731

    return f"""\
/*
 * model.c - meta model {_cstr(model_name)}: torchvision Faster R-CNN ({config['arch']}).
 *
 * GENERATED by tools/handlers/torchvision_frcnn_detector.py; re-run the converter instead of
 * editing.  Every constant below was read from the live torchvision model (bundle.json "config"
 * lists them with their meaning; docs/bundles.md).
 *
 * Orchestration, as torchvision's GeneralizedRCNN runs it at eval time for one image:
 *   the client's image [1, 3, h, w] ({config['input_dtype']}) of any size, letterboxed into the compiled
 *   shape that wastes the least area (torchvision's resize and zero padding: below)
 *   -> {config['stage1']} (backbone + RPN head, normalisation baked in)
 *   -> per level: anchors, flattened objectness and deltas
 *   -> RPN proposal selection (top-k per level, decode, clip, NMS, top {rpn['post_nms_top_n']})
 *   -> MultiScaleRoIAlign into a scratch [K, C, 7, 7] (aligned=false, sampling ratio {roi['sampling_ratio']})
 *   -> {config['stage2']} (box head + predictor over K = {roi['K']} rows; rows past the
 *      proposal count are zero and ignored)
 *   -> final per-class NMS (class 0 = background), boxes scaled back to the client's pixels
 *   -> {config['output_name']} [N, {config['output_cols']}].
 * Errors are returned as hs_status values naming this model; nothing here allocates: buffers
 * come from hs_meta_scratch (pooled per worker) and the glue workspace is kept per worker.
 */
#include <math.h> /* isfinite (a macro: the bundle links no libm) */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hloserve/detection_glue.h"
#include "hloserve/meta.h"

#define MODEL_NAME {_cstr(model_name)}
#define STAGE1 {_cstr(config['stage1'])}
#define STAGE2 {_cstr(config['stage2'])}
#define INPUT_NAME {_cstr(config['input_name'])}
#define OUTPUT_NAME {_cstr(config['output_name'])}
#define INPUT_DTYPE {in_dtype}
#define INPUT_IS_U8 {1 if config['input_dtype'] == 'u8' else 0}
#define MAX_EDGE {MAX_INPUT_EDGE}    /* largest client image edge */
#define OUTPUT_COLS {int(config['output_cols'])}
#define NUM_CLASSES {int(config['num_classes'])}

#define NUM_LEVELS {L}     /* RPN levels */
#define NUM_POOLED {P}     /* feature maps ROI pooling reads */
#define NUM_SHAPES {len(shapes)}     /* compiled input shapes */
#define K {int(roi['K'])}          /* stage2 rows = rpn post-NMS top-n */
#define CHANNELS {int(roi['channels'])}
#define POOLED_H {int(roi['output_size'][0])}
#define POOLED_W {int(roi['output_size'][1])}
#define DETECTIONS {int(box['detections_per_img'])}

typedef struct image_shape {{
  int64_t width, height;
  int64_t grid[NUM_LEVELS][2];   /* [h, w] of each RPN level */
  int64_t stride[NUM_LEVELS][2]; /* [stride_h, stride_w] = image size // grid size */
}} image_shape;

static const image_shape SHAPES[NUM_SHAPES] = {{
{chr(10).join(shape_rows)}
}};
#define SHAPES_TEXT "{shapes_text}"
#define MAX_SHAPE_W {max(s['width'] for s in shapes)}
#define MAX_SHAPE_H {max(s['height'] for s in shapes)}

/* GeneralizedRCNNTransform's image_mean: the letterbox's padding ([0, 1] units). */
static const float IMAGE_MEAN[3] = {{{", ".join(_cf(x) for x in config['image_mean'])}}};

/* Cell anchors per level (AnchorGenerator.cell_anchors: x1, y1, x2, y2 around 0). */
{chr(10).join(cells)}
static const float *const CELL_ANCHORS[NUM_LEVELS] = {{{", ".join(f"&CELL_ANCHORS_{i}[0][0]" for i in range(L))}}};
static const int64_t NUM_CELL_ANCHORS[NUM_LEVELS] = {ilist(len(a) for a in rpn['cell_anchors'])};

static const char *const OBJ_NAMES[NUM_LEVELS] = {names(rpn['objectness_names'])};
static const char *const DELTA_NAMES[NUM_LEVELS] = {names(rpn['delta_names'])};
static const char *const FEAT_NAMES[NUM_POOLED] = {names(roi['feature_names'])};
static const double POOL_SCALES[NUM_POOLED] = {{{", ".join(_cd(x) for x in roi['scales'])}}};

static const hs_glue_rpn_params RPN_PARAMS = {{
    .pre_nms_top_n = {int(rpn['pre_nms_top_n'])},
    .post_nms_top_n = {int(rpn['post_nms_top_n'])},
    .nms_thresh = {_cd(rpn['nms_thresh'])},
    .score_thresh = {_cd(rpn['score_thresh'])},
    .min_size = {_cd(rpn['min_size'])},
    .weights = {{{", ".join(_cf(x) for x in rpn['box_coder_weights'])}}},
    .bbox_xform_clip = {_cd(rpn['bbox_xform_clip'])},
}};

static const hs_glue_roi_align_params ROI_PARAMS = {{
    .pooled_height = POOLED_H,
    .pooled_width = POOLED_W,
    .sampling_ratio = {int(roi['sampling_ratio'])},
    .aligned = false,
}};

static const hs_glue_fast_rcnn_params BOX_PARAMS = {{
    .score_thresh = {_cd(box['score_thresh'])},
    .nms_thresh = {_cd(box['nms_thresh'])},
    .detections_per_img = DETECTIONS,
    .weights = {{{", ".join(_cf(x) for x in box['box_coder_weights'])}}},
    .bbox_xform_clip = {_cd(box['bbox_xform_clip'])},
    .bg_first = {"true" if box['bg_first'] else "false"},
    .min_size = {_cd(box['min_size'])},
}};

static const hs_glue_config GLUE_CONFIG = {{
    .max_boxes = {limits['max_boxes']},
    .max_level_anchors = {limits['max_level_anchors']},
    .max_classes = NUM_CLASSES,
    .num_threads = 1, /* replaced by hs_meta_threads(ctx) in get_workspace */
}};

static const hs_named_tensor *find_tensor(const hs_named_tensor *ts, int n, const char *name) {{
  for (int i = 0; i < n; i++)
    if (ts[i].name && strcmp(ts[i].name, name) == 0) return &ts[i];
  return NULL;
}}

/* The float32 tensor `name` of `model`'s outputs, checked against the expected shape. */
static hs_status *get_f32(const hs_named_tensor *ts, int n, const char *model, const char *name,
                          int rank, const int64_t *dims, const float **out) {{
  const hs_named_tensor *t = find_tensor(ts, n, name);
  if (!t) return hs_status_new(HS_INTERNAL, "%s: %s returned no %s", MODEL_NAME, model, name);
  bool ok = t->tensor.dtype == HS_F32 && t->tensor.shape.rank == rank;
  for (int i = 0; ok && i < rank; i++) ok = t->tensor.shape.dims[i] == dims[i];
  if (!ok) {{
    char got[96];
    hs_shape_str(&t->tensor.shape, got, sizeof got);
    return hs_status_new(HS_INTERNAL, "%s: %s output %s is %s %s, not the float32 shape the "
                         "converter saw", MODEL_NAME, model, name,
                         hs_dtype_name(t->tensor.dtype), got);
  }}
  *out = (const float *)t->tensor.data;
  return NULL;
}}

static hs_status *scratch_f32(hs_meta_ctx *ctx, int rank, const int64_t *dims, hs_tensor *out) {{
  hs_shape shape;
  memset(&shape, 0, sizeof shape);
  shape.rank = rank;
  for (int i = 0; i < rank; i++) shape.dims[i] = dims[i];
  return hs_meta_scratch(ctx, HS_F32, &shape, out);
}}

static void destroy_workspace(void *ws) {{ hs_glue_workspace_destroy((hs_glue_workspace *)ws); }}

static hs_status *get_workspace(hs_meta_ctx *ctx, hs_glue_workspace **out) {{
  void **slot = hs_meta_state(ctx, destroy_workspace);
  if (!slot) return hs_status_new(HS_INTERNAL, "%s: no per-worker state", MODEL_NAME);
  if (!*slot) {{
    /* the glue runs while the stages' threads are idle: use as many */
    hs_glue_config cfg = GLUE_CONFIG;
    cfg.num_threads = hs_meta_threads(ctx);
    hs_glue_workspace *ws = NULL;
    HS_RETURN_IF_ERROR(hs_glue_workspace_create(&cfg, &ws));
    *slot = ws;
  }}
  *out = (hs_glue_workspace *)*slot;
  return NULL;
}}

/* ---- the letterbox: torchvision's GeneralizedRCNNTransform, for one image ----------------
 *
 * torchvision (eval): normalise, resize by scale = min(min_size / min(h, w), max_size /
 * max(h, w)) with F.interpolate(bilinear, align_corners=False, recompute_scale_factor=True),
 * zero-pad bottom/right (after normalisation) into the batch, run, clip to the resized size, and
 * multiply the boxes by original / resized (transform.postprocess).  Here the batch is one of the
 * compiled shapes W x H; the scale is min(W / w, H / h), which is torchvision's formula with
 * min_size and max_size the shape's short and long edges whenever the image and the shape have
 * the same orientation (or either is square), and fits the image otherwise.  Stage1 normalises,
 * so the resize runs on the [0, 1] image (interpolation is linear: the same values up to
 * rounding) and the padding is the ImageNet mean, which stage1 normalises to torchvision's 0. */

typedef struct letterbox {{
  const image_shape *shape;
  int64_t rw, rh; /* the resized image: its region [0, rh) x [0, rw) of the compiled shape */
  int64_t waste;  /* padded pixels */
}} letterbox;

static letterbox fit_shape(const image_shape *shp, int64_t w, int64_t h) {{
  const double sh = (double)shp->height / (double)h, sw = (double)shp->width / (double)w;
  const double s = sh < sw ? sh : sw;
  /* F.interpolate with recompute_scale_factor: output size = int(size * scale), in double */
  letterbox b = {{shp, (int64_t)((double)w * s), (int64_t)((double)h * s), 0}};
  if (b.rw > shp->width) b.rw = shp->width;
  if (b.rh > shp->height) b.rh = shp->height;
  b.waste = shp->width * shp->height - b.rw * b.rh;
  return b;
}}

/* The compiled shape that wastes the least area (the first listed on ties); rw or rh 0 when even
 * the best cannot hold the image (an image thinner than one pixel after scaling). */
static letterbox choose_shape(int64_t w, int64_t h) {{
  letterbox best = fit_shape(&SHAPES[0], w, h);
  for (int i = 1; i < NUM_SHAPES; i++) {{
    letterbox b = fit_shape(&SHAPES[i], w, h);
    bool usable = b.rw > 0 && b.rh > 0, best_usable = best.rw > 0 && best.rh > 0;
    if (usable && (!best_usable || b.waste < best.waste)) best = b;
  }}
  return best;
}}

/* One axis of ATen's CPU upsample_bilinear2d (align_corners=False, no scale given): in float,
 * src = max(scale * (i + 0.5) - 0.5, 0) with scale = in / out, i0 = min(floor(src), in - 1),
 * i1 = i0 + (i0 < in - 1), l1 = clamp(src - i0, 0, 1), l0 = 1 - l1; an axis whose size does not
 * change is copied (i0 = i1 = i, l0 = 1, l1 = 0). */
static void axis_weights(int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *l0, float *l1) {{
  const float scale = (float)in / (float)out;
  for (int64_t i = 0; i < out; i++) {{
    if (in == out) {{
      i0[i] = i1[i] = i;
      l0[i] = 1.0f;
      l1[i] = 0.0f;
      continue;
    }}
    float src = scale * ((float)i + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    int64_t k = (int64_t)src; /* floor: src >= 0 */
    if (k > in - 1) k = in - 1;
    float lambda = src - (float)k;
    lambda = lambda < 0.0f ? 0.0f : lambda > 1.0f ? 1.0f : lambda;
    i0[i] = k;
    i1[i] = k + (k < in - 1 ? 1 : 0);
    l1[i] = lambda;
    l0[i] = 1.0f - lambda;
  }}
}}

/* The image [1, 3, h, w] (u8, or f32 in [0, 1]) letterboxed into out [1, 3, H, W] in [0, 1].
 * Per output pixel, as ATen computes it: (x00 * wx0 + x01 * wx1) * wy0 + (x10 * wx0 + x11 * wx1)
 * * wy1.  u8 values become v / 255 in float, torchvision's img.float() / 255. */
static void letterbox_image(const void *image, int64_t h, int64_t w, const letterbox *b,
                            const int64_t *xi0, const int64_t *xi1, const float *xl0,
                            const float *xl1, const int64_t *yi0, const int64_t *yi1,
                            const float *yl0, const float *yl1, float *out) {{
  const int64_t H = b->shape->height, W = b->shape->width;
#if INPUT_IS_U8
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
#define PIX(row, x) lut[(row)[x]]
  typedef uint8_t pixel;
#else
#define PIX(row, x) ((row)[x])
  typedef float pixel;
#endif
  for (int c = 0; c < 3; c++) {{
    const pixel *src = (const pixel *)image + (size_t)c * (size_t)(h * w);
    float *dst = out + (size_t)c * (size_t)(H * W);
    const float pad = IMAGE_MEAN[c];
    for (int64_t y = 0; y < b->rh; y++) {{
      const pixel *r0 = src + yi0[y] * w, *r1 = src + yi1[y] * w;
      const float wy0 = yl0[y], wy1 = yl1[y];
      float *d = dst + y * W;
      for (int64_t x = 0; x < b->rw; x++) {{
        const float t0 = PIX(r0, xi0[x]) * xl0[x] + PIX(r0, xi1[x]) * xl1[x];
        const float t1 = PIX(r1, xi0[x]) * xl0[x] + PIX(r1, xi1[x]) * xl1[x];
        d[x] = t0 * wy0 + t1 * wy1;
      }}
      for (int64_t x = b->rw; x < W; x++) d[x] = pad;
    }}
    for (int64_t i = b->rh * W; i < H * W; i++) dst[i] = pad;
  }}
#undef PIX
}}

/* ---- the run ------------------------------------------------------------------------------ */

static hs_status *run(hs_meta_ctx *ctx, const hs_named_tensor *inputs, int num_inputs) {{
  /* The client's image: [1, 3, h, w] of any size. */
  const hs_named_tensor *image = find_tensor(inputs, num_inputs, INPUT_NAME);
  if (!image) return hs_status_new(HS_INVALID_ARGUMENT, "%s: missing input %s", MODEL_NAME,
                                   INPUT_NAME);
  const hs_shape *is = &image->tensor.shape;
  if (image->tensor.dtype != INPUT_DTYPE || is->rank != 4 || is->dims[0] != 1 || is->dims[1] != 3 ||
      is->dims[2] < 1 || is->dims[3] < 1 || is->dims[2] > MAX_EDGE || is->dims[3] > MAX_EDGE) {{
    char got[96];
    hs_shape_str(is, got, sizeof got);
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: input %s must be %s [1, 3, H, W] (an RGB "
                         "image, 1 <= H, W <= %d); got %s %s", MODEL_NAME, INPUT_NAME,
                         hs_dtype_kserve_name(INPUT_DTYPE), MAX_EDGE,
                         hs_dtype_kserve_name(image->tensor.dtype), got);
  }}
  const int64_t h = is->dims[2], w = is->dims[3];
#if !INPUT_IS_U8
  {{
    const float *px = (const float *)image->tensor.data;
    for (int64_t i = 0; i < 3 * h * w; i++)
      if (!isfinite(px[i]))
        return hs_status_new(HS_INVALID_ARGUMENT, "%s: input %s holds a non-finite value at "
                             "element %lld (pixels are floats in [0, 1])", MODEL_NAME, INPUT_NAME,
                             (long long)i);
  }}
#endif
  const letterbox lb = choose_shape(w, h);
  if (lb.rw < 1 || lb.rh < 1)
    return hs_status_new(HS_INVALID_ARGUMENT, "%s: a %lld x %lld image is too thin to letterbox "
                         "into any of " SHAPES_TEXT, MODEL_NAME, (long long)w, (long long)h);
  const image_shape *shp = lb.shape;
  const int64_t H = shp->height, W = shp->width;
  hs_glue_workspace *ws = NULL;
  HS_RETURN_IF_ERROR(get_workspace(ctx, &ws));

  /* Letterbox into stage1's float32 input. */
  hs_tensor index, weight, letterboxed;
  memset(&index, 0, sizeof index);
  {{
    hs_shape ishape;
    memset(&ishape, 0, sizeof ishape);
    ishape.rank = 1;
    ishape.dims[0] = 2 * (MAX_SHAPE_W + MAX_SHAPE_H);
    HS_RETURN_IF_ERROR(hs_meta_scratch(ctx, HS_I64, &ishape, &index));
  }}
  HS_RETURN_IF_ERROR(scratch_f32(ctx, 1, (const int64_t[]){{2 * (MAX_SHAPE_W + MAX_SHAPE_H)}}, &weight));
  HS_RETURN_IF_ERROR(scratch_f32(ctx, 4, (const int64_t[]){{1, 3, H, W}}, &letterboxed));
  {{
    int64_t *xi0 = (int64_t *)index.data, *xi1 = xi0 + lb.rw, *yi0 = xi1 + lb.rw, *yi1 = yi0 + lb.rh;
    float *xl0 = (float *)weight.data, *xl1 = xl0 + lb.rw, *yl0 = xl1 + lb.rw, *yl1 = yl0 + lb.rh;
    axis_weights(w, lb.rw, xi0, xi1, xl0, xl1);
    axis_weights(h, lb.rh, yi0, yi1, yl0, yl1);
    letterbox_image(image->tensor.data, h, w, &lb, xi0, xi1, xl0, xl1, yi0, yi1, yl0, yl1,
                    (float *)letterboxed.data);
  }}
  HS_RETURN_IF_ERROR(hs_meta_check_deadline(ctx));

  /* Stage 1: backbone + RPN head. */
  const hs_named_tensor s1_in = {{.name = INPUT_NAME, .tensor = letterboxed}};
  const hs_named_tensor *s1 = NULL;
  int n1 = 0;
  HS_RETURN_IF_ERROR(hs_meta_call(ctx, STAGE1, &s1_in, 1, &s1, &n1));

  /* Per level: anchors over the whole compiled shape (torchvision: over the padded batch),
   * flattened objectness and deltas (decoded lazily by the selection). */
  hs_glue_rpn_level levels[NUM_LEVELS];
  for (int l = 0; l < NUM_LEVELS; l++) {{
    const int64_t A = NUM_CELL_ANCHORS[l], gh = shp->grid[l][0], gw = shp->grid[l][1];
    const int64_t N = gh * gw * A;
    const float *obj = NULL, *del = NULL;
    HS_RETURN_IF_ERROR(get_f32(s1, n1, STAGE1, OBJ_NAMES[l], 4, (const int64_t[]){{1, A, gh, gw}}, &obj));
    HS_RETURN_IF_ERROR(get_f32(s1, n1, STAGE1, DELTA_NAMES[l], 4, (const int64_t[]){{1, 4 * A, gh, gw}}, &del));
    hs_tensor anchors, obj_flat, del_flat;
    HS_RETURN_IF_ERROR(scratch_f32(ctx, 2, (const int64_t[]){{N, 4}}, &anchors));
    HS_RETURN_IF_ERROR(scratch_f32(ctx, 1, (const int64_t[]){{N}}, &obj_flat));
    HS_RETURN_IF_ERROR(scratch_f32(ctx, 2, (const int64_t[]){{N, 4}}, &del_flat));
    HS_RETURN_IF_ERROR(hs_glue_generate_anchors(CELL_ANCHORS[l], A, gh, gw, shp->stride[l][0],
                                                shp->stride[l][1], anchors.data, N));
    HS_RETURN_IF_ERROR(hs_glue_flatten_objectness(obj, A, gh, gw, obj_flat.data, N));
    HS_RETURN_IF_ERROR(hs_glue_flatten_deltas(del, A, gh, gw, del_flat.data, N));
    levels[l] = (hs_glue_rpn_level){{.num_anchors = N, .objectness = obj_flat.data, .boxes = NULL,
                                    .deltas = del_flat.data, .anchors = anchors.data}};
  }}

  /* Proposals: top-n per level, decode, clip to the resized image, NMS, the best K. */
  hs_tensor proposals;
  int64_t num_props = 0;
  HS_RETURN_IF_ERROR(scratch_f32(ctx, 2, (const int64_t[]){{K, 4}}, &proposals));
  HS_RETURN_IF_ERROR(hs_glue_select_rpn_proposals(ws, levels, NUM_LEVELS, lb.rh, lb.rw,
                                                  &RPN_PARAMS, proposals.data, NULL, K,
                                                  &num_props));

  hs_tensor dets;
  int64_t num_dets = 0;
  HS_RETURN_IF_ERROR(scratch_f32(ctx, 2, (const int64_t[]){{DETECTIONS, OUTPUT_COLS}}, &dets));
  if (num_props > 0) {{
    /* ROIAlign of the proposals into stage2's input; unused rows stay zero. */
    hs_glue_feature feats[NUM_POOLED];
    for (int i = 0; i < NUM_POOLED; i++) {{
      const hs_named_tensor *f = find_tensor(s1, n1, FEAT_NAMES[i]);
      if (!f || f->tensor.dtype != HS_F32 || f->tensor.shape.rank != 4 ||
          f->tensor.shape.dims[0] != 1 || f->tensor.shape.dims[1] != CHANNELS)
        return hs_status_new(HS_INTERNAL, "%s: %s output %s is missing or not [1, %d, h, w]",
                             MODEL_NAME, STAGE1, FEAT_NAMES[i], CHANNELS);
      feats[i] = (hs_glue_feature){{.data = (const float *)f->tensor.data, .channels = CHANNELS,
                                   .height = f->tensor.shape.dims[2],
                                   .width = f->tensor.shape.dims[3], .layout = HS_GLUE_CHW,
                                   .spatial_scale = POOL_SCALES[i]}};
    }}
    hs_tensor roi;
    HS_RETURN_IF_ERROR(scratch_f32(ctx, 4, (const int64_t[]){{K, CHANNELS, POOLED_H, POOLED_W}}, &roi));
    const size_t row = (size_t)CHANNELS * POOLED_H * POOLED_W;
    memset((float *)roi.data + (size_t)num_props * row, 0, (size_t)(K - num_props) * row * sizeof(float));
    HS_RETURN_IF_ERROR(hs_glue_multiscale_roi_align(ws, feats, NUM_POOLED, proposals.data,
                                                    num_props, &ROI_PARAMS, roi.data, K, NULL));

    /* Stage 2: box head + predictor over K rows; the first num_props are real. */
    const hs_named_tensor roi_in = {{.name = "ROI_FEATS", .tensor = roi}};
    const hs_named_tensor *s2 = NULL;
    int n2 = 0;
    HS_RETURN_IF_ERROR(hs_meta_call(ctx, STAGE2, &roi_in, 1, &s2, &n2));
    const float *cls = NULL, *deltas = NULL;
    HS_RETURN_IF_ERROR(get_f32(s2, n2, STAGE2, "cls_logits", 2, (const int64_t[]){{K, NUM_CLASSES}}, &cls));
    HS_RETURN_IF_ERROR(get_f32(s2, n2, STAGE2, "bbox_deltas", 2, (const int64_t[]){{K, 4 * NUM_CLASSES}}, &deltas));

    /* Softmax, decode, clip to the resized image, score threshold, small boxes, per-class NMS,
     * top detections. */
    HS_RETURN_IF_ERROR(hs_glue_fast_rcnn_inference(ws, cls, deltas, proposals.data, num_props,
                                                   NUM_CLASSES, lb.rh, lb.rw, &BOX_PARAMS,
                                                   dets.data, DETECTIONS, OUTPUT_COLS, &num_dets));
  }}

  hs_shape out_shape;
  memset(&out_shape, 0, sizeof out_shape);
  out_shape.rank = 2;
  out_shape.dims[0] = num_dets;
  out_shape.dims[1] = OUTPUT_COLS;
  hs_tensor out;
  HS_RETURN_IF_ERROR(hs_meta_output(ctx, OUTPUT_NAME, HS_F32, &out_shape, &out));
  /* Back to the client's pixels: transform.postprocess multiplies by original / resized, both
   * float32. */
  const float ratio_w = (float)w / (float)lb.rw, ratio_h = (float)h / (float)lb.rh;
  const float *src = (const float *)dets.data;
  float *dst = (float *)out.data;
  for (int64_t i = 0; i < num_dets; i++) {{
    const float *s = src + i * OUTPUT_COLS;
    float *d = dst + i * OUTPUT_COLS;
    for (int k = 0; k < OUTPUT_COLS; k++) d[k] = s[k];
    d[0] = s[0] * ratio_w;
    d[1] = s[1] * ratio_h;
    d[2] = s[2] * ratio_w;
    d[3] = s[3] * ratio_h;
  }}
  return NULL;
}}

hs_status *hs_meta_bundle_register(void) {{ return hs_meta_register(MODEL_NAME, run); }}
"""
