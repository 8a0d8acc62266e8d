#!/usr/bin/python3
"""Writes an ImageNet-shaped toy ImageFolder for bench/scale.sh: C classes of N RGB PNGs of
S px each in train/ and V in val/. Each class is a colour and a stripe orientation and
frequency plus noise, so a small teacher learns it in a few epochs; the bench measures cost,
not accuracy. Usage: scale_data.py OUT C N S V"""
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1]
C, N, S, V = (int(a) for a in sys.argv[2:6])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
digits = len(str(C - 1))
for c in range(C):
    colour = rng.uniform(40, 215, size=3).astype(np.float32)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(1, 6)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    for split, n in (("train", N), ("val", V)):
        d = os.path.join(out, split, f"c{c:0{digits}d}")
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            img = colour[None, None, :] + 40 * wave[..., None] + rng.normal(0, 20, (S, S, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, f"{i}.png"))
