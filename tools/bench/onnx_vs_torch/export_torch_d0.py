"""Export the PyTorch reference tf_efficientdet_d0 (bare network, no anchors / NMS) to ONNX.

Used to compare our exporter's graph with the one from the PyTorch reference on onnxruntime-node
(see compare.mjs in this folder).

    /usr/bin/python3 tools/bench/onnx_vs_torch/export_torch_d0.py [--src /tmp/torchref] [--out DIR] [--size 512]

--src is a folder holding the reference's `effdet/` and `timm/` packages, extracted from the mirrors, e.g.
    git --git-dir=/work/.mirror/rwightman+efficientdet-pytorch/repo archive HEAD effdet | tar x -C /tmp/torchref
    git --git-dir=/work/.mirror/huggingface+pytorch-image-models/repo archive HEAD timm | tar x -C /tmp/torchref

torchvision (NMS, FrozenBatchNorm2d) and pycocotools are only imported, never used by the network, so they
are replaced by placeholder modules here; omegaconf (configs) by a small attribute-dict shim. Weights are random (latency does not depend on them).

Writes <out>/torch_d0.onnx (eval mode, constant folding on: BatchNorm is folded into the convs by the
exporter) and <out>/torch_d0_nofold.onnx (do_constant_folding=False, training-mode-free graph with
BatchNormalization nodes kept) for reference.
"""
import argparse
import importlib.abc
import importlib.machinery
import os
import sys
import types

from torch import Tensor  # noqa: F401  (TorchScript type comments below)


class _PlaceholderMeta(type):
    """Class attributes of placeholders (e.g. InterpolationMode.NEAREST) are placeholders too."""

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _PlaceholderMeta(name, (_Placeholder,), {})


class _Placeholder(metaclass=_PlaceholderMeta):
    """Any attribute of a placeholder module: a class that fails when actually used."""

    def __init__(self, *a, **k):
        raise RuntimeError('placeholder for a module that is not installed')


def _batched_nms(boxes, scores, idxs, iou_threshold: float):
    # type: (Tensor, Tensor, Tensor, float) -> Tensor
    """Placeholder for torchvision.ops.boxes.batched_nms: effdet's anchors.py TorchScript-compiles a caller."""
    raise RuntimeError('torchvision is not installed')


def _remove_small_boxes(boxes, min_size: float):
    # type: (Tensor, float) -> Tensor
    raise RuntimeError('torchvision is not installed')


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots):
        self.roots = roots

    def find_spec(self, fullname, path, target=None):
        if fullname.split('.')[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        mod = types.ModuleType(spec.name)
        mod.__path__ = []

        def __getattr__(name, _mod=spec.name):
            if name.startswith('__'):
                raise AttributeError(name)
            return _PlaceholderMeta(name, (_Placeholder,), {'__module__': _mod})

        mod.__getattr__ = __getattr__
        if spec.name == 'torchvision.ops.boxes':
            mod.batched_nms = _batched_nms
            mod.remove_small_boxes = _remove_small_boxes
        return mod

    def exec_module(self, module):
        pass


class _AttrDict(dict):
    """Just enough of omegaconf's DictConfig for effdet's config code (not installed here)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    def __setattr__(self, name, value):
        self[name] = value

    def __deepcopy__(self, memo):
        import copy
        return _AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


def _install_omegaconf_shim():
    try:
        import omegaconf  # noqa: F401
        return
    except ImportError:
        pass
    mod = types.ModuleType('omegaconf')

    class OmegaConf:
        @staticmethod
        def create(d=None):
            return _AttrDict(d or {})

        @staticmethod
        def set_readonly(conf, flag):
            pass

        @staticmethod
        def set_struct(conf, flag):
            pass

    mod.OmegaConf = OmegaConf
    mod.DictConfig = _AttrDict
    sys.modules['omegaconf'] = mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--src', default='/tmp/torchref')
    ap.add_argument('--out', default='/tmp/torchref')
    ap.add_argument('--size', type=int, default=512)
    ap.add_argument('--opset', type=int, default=17)
    args = ap.parse_args()

    sys.meta_path.append(_StubFinder({'torchvision', 'pycocotools'}))
    sys.path.insert(0, args.src)
    _install_omegaconf_shim()

    import torch
    torch.set_num_threads(1)
    from timm.layers import set_layer_config
    from effdet import create_model

    with set_layer_config(scriptable=False, exportable=True, no_jit=True):
        model = create_model('tf_efficientdet_d0', pretrained=False, pretrained_backbone=False,
                             image_size=(args.size, args.size))
    model.eval()
    x = torch.randn(1, 3, args.size, args.size)
    with torch.no_grad():
        cls, box = model(x)
    print('outputs:', [tuple(c.shape) for c in cls], [tuple(b.shape) for b in box])

    names_out = [f'class_{i}' for i in range(len(cls))] + [f'box_{i}' for i in range(len(box))]
    for fold, name in ((True, 'torch_d0.onnx'), (False, 'torch_d0_nofold.onnx')):
        path = os.path.join(args.out, name)
        with torch.no_grad():
            torch.onnx.export(model, x, path, opset_version=args.opset, input_names=['images'],
                              output_names=names_out, do_constant_folding=fold,
                              training=torch.onnx.TrainingMode.EVAL)
        print('wrote', path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    main()
