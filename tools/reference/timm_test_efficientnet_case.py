"""Writes packages/efficientnet/testdata/timm_test_efficientnet*.safetensors: timm's `test_efficientnet` (10 classes,
seeded random weights rounded to float16, BatchNorm statistics drawn away from identity), an input and timm's
logits and features for it. @effdet/efficientnet's registry test loads the weights unchanged and compares.

Run by hand (never in CI; the project does not depend on Python), with timm importable (a checkout of
huggingface/pytorch-image-models on PYTHONPATH) and torch, torchvision, numpy (Debian: python3-torch
python3-torchvision python3-numpy):
    PYTHONPATH=/path/to/pytorch-image-models /usr/bin/python3 tools/reference/timm_test_efficientnet_case.py
"""
import json
import os
import struct

import numpy as np
import timm
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'packages', 'efficientnet', 'testdata')


def save(path, tensors, dtype, meta):
    header, chunks, off = {}, [], 0
    for k, v in tensors.items():
        a = np.ascontiguousarray(v.detach().numpy().astype(np.float16 if dtype == 'F16' else np.float32))
        header[k] = {'dtype': dtype, 'shape': list(a.shape), 'data_offsets': [off, off + a.nbytes]}
        chunks.append(a.tobytes())
        off += a.nbytes
    header['__metadata__'] = meta
    hb = json.dumps(header).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + b''.join(chunks))


def main():
    torch.manual_seed(0)
    m = timm.create_model('test_efficientnet', num_classes=10)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
        for v in m.state_dict().values():
            if v.dtype.is_floating_point:
                v.copy_(v.half().float())  # the weights the float16 file holds, exactly
    m.eval()
    sd = {k: v for k, v in m.state_dict().items() if not k.endswith('num_batches_tracked')}
    meta = {'model': 'test_efficientnet', 'timm': timm.__version__, 'torch': torch.__version__, 'num_classes': '10'}
    save(os.path.join(OUT, 'timm_test_efficientnet.safetensors'), sd, 'F16', meta)
    feats = timm.create_model('test_efficientnet', features_only=True)
    feats.load_state_dict({k: v for k, v in sd.items() if k in feats.state_dict()})
    feats.eval()
    x = torch.randn(2, 3, 40, 48)
    with torch.no_grad():
        io = {'input': x.permute(0, 2, 3, 1), 'logits': m(x)}
        for i, f in enumerate(feats(x)):
            io[f'features.{i}'] = f.permute(0, 2, 3, 1)
    meta['feature_info'] = json.dumps(feats.feature_info.get_dicts())
    save(os.path.join(OUT, 'timm_test_efficientnet_io.safetensors'), io, 'F32', meta)


if __name__ == '__main__':
    main()
