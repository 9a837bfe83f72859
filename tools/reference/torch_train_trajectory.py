"""Replays tools/cli/src/train_case.ts in PyTorch and prints the per-step losses as JSON.

Run by hand (never in CI; the project does not depend on Python):
    npm run build && node tools/reference/train_case.mjs /tmp/case
    /usr/bin/python3 tools/reference/torch_train_trajectory.py /tmp/case > tools/cli/testdata/train_case_torch.json
Needs numpy and torch (Debian: python3-numpy python3-torch). The network is @effdet/efficientnet's
`effdet_test_efficientnet` (its own tiny network with every block type; not timm's `test_efficientnet`, whose stem and
stages differ) re-written here with timm's module and parameter names (PyTorch padding k // 2, BatchNorm eps 1e-5,
momentum 0.1, SiLU, squeeze-excite with SiLU and a sigmoid gate), so the dumped state_dict loads strictly.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

act = F.silu


def load_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        start, end = info['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + start:8 + n + end], dtype=np.float32).reshape(info['shape']).copy())
    return out


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)


class SqueezeExcite(nn.Module):
    def __init__(self, c, rd):
        super().__init__()
        self.conv_reduce = nn.Conv2d(c, rd, 1)
        self.conv_expand = nn.Conv2d(rd, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv_expand(act(self.conv_reduce(x.mean((2, 3), keepdim=True)))))


class ConvBnAct(nn.Module):  # cn_r1_k3_s1_e1_c16_skip
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = bn(c)

    def forward(self, x):
        return x + act(self.bn1(self.conv(x)))


class EdgeResidual(nn.Module):  # er_r1_k3_s2_e4_c24
    def __init__(self, cin, mid, cout):
        super().__init__()
        self.conv_exp = nn.Conv2d(cin, mid, 3, 2, 1, bias=False)
        self.bn1 = bn(mid)
        self.conv_pwl = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = bn(cout)

    def forward(self, x):
        return self.bn2(self.conv_pwl(act(self.bn1(self.conv_exp(x)))))


class DepthwiseSeparable(nn.Module):  # ds_r1_k3_s1_e1_c24_se0.25
    def __init__(self, c, rd):
        super().__init__()
        self.conv_dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn1 = bn(c)
        self.se = SqueezeExcite(c, rd)
        self.conv_pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = bn(c)

    def forward(self, x):
        return x + self.bn2(self.conv_pw(self.se(act(self.bn1(self.conv_dw(x))))))


class InvertedResidual(nn.Module):  # ir_..._e4_..._se0.25
    def __init__(self, cin, cout, k, stride, rd):
        super().__init__()
        mid = cin * 4
        self.skip = stride == 1 and cin == cout
        self.conv_pw = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = bn(mid)
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = bn(mid)
        self.se = SqueezeExcite(mid, rd)
        self.conv_pwl = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = bn(cout)

    def forward(self, x):
        y = self.bn3(self.conv_pwl(self.se(act(self.bn2(self.conv_dw(act(self.bn1(self.conv_pw(x)))))))))
        return x + y if self.skip else y


class TestEfficientNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = bn(16)
        S = nn.Sequential
        self.blocks = S(S(ConvBnAct(16)), S(EdgeResidual(16, 64, 24)), S(DepthwiseSeparable(24, 6)),
                        S(InvertedResidual(24, 32, 3, 2, 6)),
                        S(InvertedResidual(32, 48, 5, 2, 8), InvertedResidual(48, 48, 5, 1, 12)),
                        S(InvertedResidual(48, 64, 3, 2, 12)))
        self.conv_head = nn.Conv2d(64, 128, 1, bias=False)
        self.bn2 = bn(128)
        self.classifier = nn.Linear(128, classes)

    def forward(self, x):
        x = self.blocks(act(self.bn1(self.conv_stem(x))))
        return self.classifier(act(self.bn2(self.conv_head(x))).mean((2, 3)))


def main(folder):
    torch.set_num_threads(1)
    case = json.load(open(f'{folder}/case.json'))
    S, B, steps = case['size'], case['batch'], case['steps']
    net = TestEfficientNet(case['classes'])
    net.load_state_dict(load_safetensors(f'{folder}/init.safetensors'), strict=True)
    data = np.fromfile(f'{folder}/data.f32', dtype=np.float32).reshape(-1, S, S, 3)
    labels = np.fromfile(f'{folder}/labels.i32', dtype=np.int32).astype(np.int64)
    mean, std = np.array(case['mean'], np.float32), np.array(case['std'], np.float32)
    decay = [p for n, p in net.named_parameters() if p.ndim > 1 and not n.endswith('.bias')]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim > 1 and not n.endswith('.bias'))]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': case['weightDecay']},
                             {'params': no_decay, 'weight_decay': 0.0}], lr=case['lr'], betas=(0.9, 0.999), eps=1e-8)
    net.train()
    losses = []
    for s in range(steps):
        x = torch.from_numpy(((data[s * B:(s + 1) * B] / 255 - mean) / std).transpose(0, 3, 1, 2).copy())
        y = torch.from_numpy(labels[s * B:(s + 1) * B])
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = {n: p.detach().flatten()[:8].tolist() for n, p in net.named_parameters() if n in ('conv_stem.weight', 'classifier.weight', 'classifier.bias')}
    running = {n: b.flatten()[:8].tolist() for n, b in net.named_buffers() if n in ('bn1.running_mean', 'bn1.running_var')}
    json.dump({'case': case, 'torch': torch.__version__, 'losses': losses, 'final': final, 'running': running}, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main(sys.argv[1])
