"""Trains the shapes U-Net (tu-effdet_test_efficientnet of @effdet/efficientnet with smp's Unet decoder) in PyTorch on a GPU.

Provenance of models/shapes-unet stage 8; not part of the project (nothing imports it, CI never runs it). The
network is written out here with the state-dict names of smp / timm, so the safetensors it writes load unchanged
in effdet-ts (`loadSegmentationModel`). Note: @effdet/efficientnet's `effdet_test_efficientnet` is its own tiny network
(registry family 'effdet_test'), not timm's `test_efficientnet`, so timm cannot build it; the encoder is the one
tools/reference/torch_train_trajectory.py writes out for the training-parity case. The scenes come from the TS
generator (gen.mjs) as raw bytes.

  python3 train_unet.py parity MODEL_DIR IN.bin OUT.bin H W   # logits of a TF.js U-Net folder (see parity.mjs)
  python3 train_unet.py train --init DIR|F.safetensors --data A.bin[,B.bin...] --select S.bin
      [--evals NAME=F.bin,...] --out DIR [--minutes 6] [--batch 128] [--lr 2e-3] [--ema 0.999]
      [--decoder 128,64,32,24,16] [--crop 128] [--scale-min 1.35] [--scale-max 2.0] [--eval-size 160] [--seed 0]

Training: random 1.35-2x enlargements (bilinear image, nearest mask, one affine resampling with a random D4
element), 128 px crops, cross-entropy + 0.5 Dice (smp's multiclass DiceLoss), AdamW (weight decay 1e-4 on
conv weights), 300 warm-up steps, cosine decay over the time budget, bf16 autocast on CUDA, an EMA of the weights
that is scored (select set, D4 TTA at 160 px) 8 times and written as best.safetensors when it improves. The
scoring mirrors `evaluateShapesUnet` (bilinear, half-pixel resizes; one confusion matrix over all pixels).
"""
import contextlib
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'tools', 'reference'))
from torch_train_trajectory import TestEfficientNet, act, load_safetensors  # noqa: E402  the same encoder

FEATURE_BLOCKS = [0, 2, 3, 4, 5]  # the last stage at each stride 2, 4, 8, 16, 32
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CLASSES = 7
SCENE = 96


class Encoder(TestEfficientNet):
    """smp's `tu-effdet_test_efficientnet` encoder (timm features_only): no head; the features after blocks 0, 2, 3, 4
    and 5 (strides 2 to 32)."""

    def __init__(self):
        super().__init__(1)
        del self.conv_head, self.bn2, self.classifier
        self.channels = [16, 24, 32, 48, 64]

    def forward(self, x):
        x = act(self.bn1(self.conv_stem(x)))
        feats = []
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in FEATURE_BLOCKS:
                feats.append(x)
        return feats


def conv_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv1 = conv_relu(cin + cskip, cout)
        self.conv2 = conv_relu(cout, cout)

    def forward(self, x, skip):
        size = skip.shape[-2:] if skip is not None else (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode='nearest')
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv2(self.conv1(x))


class Decoder(nn.Module):
    def __init__(self, enc_channels, dec):
        super().__init__()
        rev = enc_channels[::-1]
        ins = [rev[0]] + list(dec[:-1])
        skips = rev[1:] + [0]
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, dec))

    def forward(self, feats):
        f = feats[::-1]
        x = f[0]
        for i, b in enumerate(self.blocks):
            x = b(x, f[i + 1] if i + 1 < len(f) else None)
        return x


class Wrap(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.model = m

    def forward(self, x):
        return self.model(x)


class Unet(nn.Module):
    def __init__(self, dec):
        super().__init__()
        self.encoder = Wrap(Encoder())
        self.decoder = Decoder(self.encoder.model.channels, dec)
        self.segmentation_head = nn.Sequential(nn.Conv2d(dec[-1], CLASSES, 3, 1, 1))

    def forward(self, x):
        return self.segmentation_head(self.decoder(self.encoder(x)))


# ---------------------------------------------------------------- weights
def read_tfjs(d):
    m = json.load(open(os.path.join(d, 'model.json')))
    out = {}
    for g in m['weightsManifest']:
        buf = b''.join(open(os.path.join(d, p), 'rb').read() for p in g['paths'])
        off = 0
        for w in g['weights']:
            n = int(np.prod(w['shape'])) if w['shape'] else 1
            q = (w.get('quantization') or {}).get('dtype')
            dt = np.float16 if q == 'float16' else np.float32
            assert w['dtype'] == 'float32' and q in (None, 'float16'), w
            a = np.frombuffer(buf, dt, n, off).astype(np.float32).reshape(w['shape'])
            off += n * np.dtype(dt).itemsize
            out[w['name']] = a
    return out


def write_safetensors(path, sd, meta=None):
    header, chunks, off = {}, [], 0
    for k, t in sd.items():
        a = np.ascontiguousarray(t.detach().float().cpu().numpy())
        header[k] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [off, off + a.nbytes]}
        chunks.append(a.tobytes())
        off += a.nbytes
    if meta:
        header['__metadata__'] = {k: str(v) for k, v in meta.items()}
    hb = json.dumps(header).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


def state_dict(model):
    return {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}


def load_into(model, arrays):
    sd = state_dict(model)
    missing = [k for k in sd if k not in arrays]
    extra = [k for k in arrays if k not in sd]
    bad = [k for k in sd if k in arrays and tuple(arrays[k].shape) != tuple(sd[k].shape)]
    if missing or extra or bad:
        raise SystemExit(f'weights do not fit: missing {missing[:5]}, extra {extra[:5]}, shape {bad[:5]}')
    model.load_state_dict({k: torch.from_numpy(np.array(arrays[k])) for k in sd}, strict=False)


def load_weights(path):
    return load_safetensors(path) if path.endswith('.safetensors') else read_tfjs(path)


# ---------------------------------------------------------------- data
def read_scenes(paths, device):
    per = SCENE * SCENE * 4
    raw = np.concatenate([np.fromfile(p, np.uint8) for p in paths])
    n = raw.size // per
    raw = raw.reshape(n, per)
    img = torch.from_numpy(raw[:, :SCENE * SCENE * 3].reshape(n, SCENE, SCENE, 3).copy()).to(device)
    lab = torch.from_numpy(raw[:, SCENE * SCENE * 3:].reshape(n, SCENE, SCENE).copy()).to(device)
    return img, lab


def normalize(img_u8_nhwc):
    x = img_u8_nhwc.permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


# D4: (rotation by 90 degrees k times, then an optional horizontal flip) as 2x2 matrices on (x, y)
D4 = []
for kk in range(4):
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][kk]
    for fl in (1, -1):
        D4.append(((c * fl, -s), (s * fl, c)))
D4_T = torch.tensor(D4, dtype=torch.float32)


def augment(img, lab, idx, size, smin, smax, gen):
    """Random scale (output px per scene px in [smin, smax]), crop `size`, and a D4 element; bilinear image,
    nearest mask, as one affine resampling (align_corners=False, like the TS trainer's resize)."""
    b = idx.numel()
    dev = img.device
    s = torch.empty(b, device=dev).uniform_(smin, smax, generator=gen)
    k = size / (SCENE * s)  # output normalised unit in input normalised units
    t = (1 - k).clamp(min=0)
    tx = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * t
    ty = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * t
    r = D4_T.to(dev)[torch.randint(0, 8, (b,), device=dev, generator=gen)]
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, :, :2] = r * k.view(b, 1, 1)
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    x = F.grid_sample(normalize(img[idx]), grid, mode='bilinear', padding_mode='border', align_corners=False)
    y = F.grid_sample(lab[idx].unsqueeze(1).float(), grid, mode='nearest', padding_mode='border',
                      align_corners=False)
    return x, y.squeeze(1).long()


def dice_loss(logits, y):
    """smp DiceLoss (multiclass, from logits): 1 - soft dice per class over the batch, classes absent from the
    target skipped, averaged over classes."""
    p = logits.float().softmax(1)
    oh = F.one_hot(y, CLASSES).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    inter = (p * oh).sum(dims)
    card = (p + oh).sum(dims)
    dice = (2 * inter) / card.clamp_min(1e-7)
    present = (oh.sum(dims) > 0).float()
    return ((1 - dice) * present).mean()


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_probs(model, img_u8, size, tta):
    """Probabilities at the scene size: network at `size` (bilinear, half-pixel), mean over the D4 views."""
    x = normalize(img_u8)
    x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)
    views = [(kk, fl) for kk in range(4) for fl in (False, True)] if tta else [(0, False)]
    acc = 0
    for kk, fl in views:
        v = torch.rot90(x, kk, (2, 3))
        if fl:
            v = torch.flip(v, (3,))
        p = model(v).float().softmax(1)
        if fl:
            p = torch.flip(p, (3,))
        acc = acc + torch.rot90(p, -kk, (2, 3))
    acc = acc / len(views)
    return F.interpolate(acc, size=(SCENE, SCENE), mode='bilinear', align_corners=False)


@torch.no_grad()
def miou(model, img, lab, size, tta, bs=100):
    cm = torch.zeros(CLASSES, CLASSES, dtype=torch.long, device=img.device)
    for i in range(0, img.shape[0], bs):
        pred = predict_probs(model, img[i:i + bs], size, tta).argmax(1)
        t = lab[i:i + bs].long()
        cm += torch.bincount((t * CLASSES + pred).flatten(), minlength=CLASSES * CLASSES).view(CLASSES, CLASSES)
    inter = cm.diag().float()
    union = cm.sum(0).float() + cm.sum(1).float() - inter
    iou = inter[union > 0] / union[union > 0]
    return iou.mean().item(), (inter.sum() / cm.sum()).item()


# ---------------------------------------------------------------- main
def parity(d, inp, out, h, w):
    meta = json.load(open(os.path.join(d, 'model.json')))['userDefinedMetadata']
    m = Unet(meta['config']['decoder_channels'])
    load_into(m, read_tfjs(d))
    m.eval()
    x = torch.from_numpy(np.fromfile(inp, np.float32).reshape(1, int(h), int(w), 3)).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = m(x).permute(0, 2, 3, 1).contiguous().numpy()
    y.tofile(out)
    print('torch logits', y.shape)


def arg(name, default=None):
    a = sys.argv
    return a[a.index(name) + 1] if name in a else default


def train():
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    out = arg('--out')
    os.makedirs(out, exist_ok=True)
    log = open(os.path.join(out, 'log.txt'), 'a')

    def say(*s):
        line = ' '.join(str(v) for v in s)
        print(line, flush=True)
        log.write(line + '\n')
        log.flush()

    minutes = float(arg('--minutes', '6'))
    bs = int(arg('--batch', '128'))
    lr = float(arg('--lr', '2e-3'))
    ema_decay = float(arg('--ema', '0.999'))
    crop = int(arg('--crop', '128'))
    smin, smax = float(arg('--scale-min', '1.35')), float(arg('--scale-max', '2.0'))
    eval_size = int(arg('--eval-size', '160'))
    dec = [int(v) for v in arg('--decoder', '128,64,32,24,16').split(',')]
    torch.manual_seed(int(arg('--seed', '0')))
    gen = torch.Generator(device=dev)
    gen.manual_seed(int(arg('--seed', '0')))

    model = Unet(dec)
    if arg('--init'):
        load_into(model, load_weights(arg('--init')))
    model = model.to(dev).to(memory_format=torch.channels_last)
    ema = Unet(dec).to(dev).to(memory_format=torch.channels_last)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    for p in ema.parameters():
        p.requires_grad_(False)

    img, lab = read_scenes(arg('--data').split(','), dev)
    sel = read_scenes([arg('--select')], dev)
    evals = {}
    for spec in (arg('--evals') or '').split(','):
        if spec:
            name, path = spec.split('=')
            evals[name] = read_scenes([path], dev)
    say(f'device {dev} {torch.cuda.get_device_name() if dev == "cuda" else ""}; train scenes {img.shape[0]}; '
        f'params {sum(p.numel() for p in model.parameters())}; batch {bs} lr {lr} ema {ema_decay} '
        f'crop {crop} scale {smin}..{smax} minutes {minutes}')

    def report(tag, net):
        net.eval()
        r = {'select': miou(net, *sel, eval_size, True)}
        for name, (a, b) in evals.items():
            r[name] = miou(net, a, b, eval_size, True)
            r[name + '_1view'] = miou(net, a, b, eval_size, False)
        say(tag, json.dumps({k: [round(v[0], 4), round(v[1], 4)] for k, v in r.items()}))
        return r

    report('init', model)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 1e-4}, {'params': no_decay, 'weight_decay': 0}],
                            lr=lr, betas=(0.9, 0.999))
    use_amp = dev == 'cuda'
    budget = minutes * 60
    t0 = time.time()
    step, best, seen = 0, -1.0, 0
    next_eval = budget / 8
    ema_sd, model_sd = ema.state_dict(), model.state_dict()
    ema_f = [v for v in ema_sd.values() if v.dtype.is_floating_point]
    model_f = [model_sd[k] for k, v in ema_sd.items() if v.dtype.is_floating_point]
    while True:
        el = time.time() - t0
        if el >= budget:
            break
        frac = el / budget
        warm = min(1.0, step / 300)
        cur = lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g['lr'] = cur
        model.train()
        idx = torch.randint(0, img.shape[0], (bs,), device=dev, generator=gen)
        x, y = augment(img, lab, idx, crop, smin, smax, gen)
        x = x.contiguous(memory_format=torch.channels_last)
        with (torch.autocast(device_type='cuda', dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y) + 0.5 * dice_loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        seen += bs
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(ema_f, d)
            torch._foreach_add_(ema_f, model_f, alpha=1 - d)
        if step % 500 == 0:
            say(f'step {step} seen {seen} {time.time() - t0:.0f}s {seen / (time.time() - t0):.0f} img/s lr {cur:.2e} loss {loss.item():.4f}')
        if time.time() - t0 >= next_eval:
            next_eval += budget / 8
            r = report(f'step {step} seen {seen} ema', ema)
            if r['select'][0] > best:
                best = r['select'][0]
                write_safetensors(os.path.join(out, 'best.safetensors'), state_dict(ema),
                                  {'step': step, 'seen': seen, 'select_mIoU': best})
                say(f'saved best (select mIoU {best:.4f})')
    r = report(f'final step {step} seen {seen} ema', ema)
    if r['select'][0] > best:
        write_safetensors(os.path.join(out, 'best.safetensors'), state_dict(ema),
                          {'step': step, 'seen': seen, 'select_mIoU': r['select'][0]})
        say(f'saved best (select mIoU {r["select"][0]:.4f})')
    say(f'done: {step} steps, {seen} images, {time.time() - t0:.0f}s')


if __name__ == '__main__':
    if sys.argv[1] == 'parity':
        parity(*sys.argv[2:7])
    else:
        train()
