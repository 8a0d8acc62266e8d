"""Reading lpld label stores from Python with numpy alone (docs/label-store.md).

    store = LabelStore("labels.lpld")
    for step in range(store.steps_kept):
        plan = store.plan(step)        # images, crop boxes, flips, CutMix: what the step replays
        probs = store.probs(step, T=20)  # the teacher distribution [n, C] at temperature T

Formats 1 and 2 are read; every record's checksum is verified, and plan() checks that the views
it regenerates have the digest the store recorded (so a reader that drifts from lpld's random
streams fails loudly instead of training on wrong labels). With --store-views stores the views
are also read as stored (stored_views()).

The random streams are lpld's (src/core/rng.h: splitmix64 + xoshiro256**), re-implemented
here bit for bit; so are the view draws (src/data/augment.cpp, src/labels/replay.cpp) and
xxh64. Run `python3 lpld_labels.py STORE` for a summary."""
import json
import math
import struct
import sys
import zlib

import numpy as np

M64 = (1 << 64) - 1
TAG_EPOCH_ORDER, TAG_VIEW, TAG_CUTMIX = 1, 2, 3
REPLAY_VERSION = 1

# Label value formats: name -> (bits per value, parameter bytes per row, levels below the row's
# maximum). The table of src/labels/codec.cpp (label_values_formats), compared by a test.
VALUE_FORMATS = {
    "fp32": (32, 0, False),
    "fp16": (16, 0, False),
    "bf16": (16, 0, False),
    "int8": (8, 4, False),
    "int4": (4, 4, False),
    "int8-max": (8, 1, True),
    "int4-max": (4, 1, True),
    "int2-max": (2, 1, True),
}


# ---- xxh64 (the checksums and digests of a store) ----
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & M64, 31) * P1) & M64


def xxh64(data, seed=0):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            lanes = struct.unpack_from("<4Q", data, i)
            v = [_round(v[k], lanes[k]) for k in range(4)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = ((_rotl(h ^ _round(0, struct.unpack_from("<Q", data, i)[0]), 27) * P1) + P4) & M64
        i += 8
    if i + 4 <= n:
        h = ((_rotl(h ^ ((struct.unpack_from("<I", data, i)[0] * P1) & M64), 23) * P2) + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ ((data[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


# ---- lpld's random streams (src/core/rng.h) ----
def _splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def derive_seed(seed, tag, a=0, b=0):
    x, h = _splitmix(seed)
    x, h = _splitmix(h ^ tag)
    x, h = _splitmix(h ^ a)
    return _splitmix(h ^ b)[1]


class Rng:
    def __init__(self, seed):
        x, self.s = seed, []
        for _ in range(4):
            x, v = _splitmix(x)
            self.s.append(v)

    def next(self):
        s0, s1, s2, s3 = self.s
        result = (_rotl((s1 * 5) & M64, 7) * 9) & M64
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
        self.s = [s0, s1, s2, s3]
        return result

    def uniform(self, lo=0.0, hi=1.0):
        return lo + (hi - lo) * ((self.next() >> 11) * 2.0 ** -53)

    def below(self, n):
        return (self.next() * n) >> 64

    def range(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def coin(self):
        return (self.next() >> 63) != 0

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        u1 = max(u1, 1e-300)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)

    def gamma(self, shape):
        if shape < 1.0:
            return self.gamma(shape + 1.0) * (self.uniform() + 1e-300) ** (1.0 / shape)
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.normal()
            v = 1.0 + c * x
            if v <= 0:
                continue
            v = v * v * v
            u = self.uniform()
            if u < 1.0 - 0.0331 * x ** 4:
                return d * v
            if math.log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
                return d * v

    def beta(self, a, b):
        if a == 1.0 and b == 1.0:
            return self.uniform()
        x, y = self.gamma(a), self.gamma(b)
        return x / (x + y)

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def _llround(x):  # std::llround of a non-negative double
    return int(math.floor(x + 0.5))


def random_view(rng, H, W, crop):
    """A RandomResizedCrop box (fractions x0, y0, w, h as float32) and a flip (augment.cpp)."""
    area = float(H) * W
    log_lo, log_hi = math.log(crop["ratio"][0]), math.log(crop["ratio"][1])
    i = -1
    for _ in range(10):
        target = area * rng.uniform(crop["scale"][0], crop["scale"][1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = _llround(math.sqrt(target * aspect)), _llround(math.sqrt(target / aspect))
        if 0 < cw <= W and 0 < ch <= H:
            i, j, h, w = rng.range(0, H - ch), rng.range(0, W - cw), ch, cw
            break
    if i < 0:
        in_ratio = W / H
        if in_ratio < crop["ratio"][0]:
            w = W
            h = _llround(w / crop["ratio"][0])
        elif in_ratio > crop["ratio"][1]:
            h = H
            w = _llround(h * crop["ratio"][1])
        else:
            w, h = W, H
        i, j = (H - h) // 2, (W - w) // 2
    f32 = np.float32
    box = (f32(j) / f32(W), f32(i) / f32(H), f32(w) / f32(W), f32(h) / f32(H))
    flip = bool(crop["flip"]) and rng.coin()
    return box, flip


def random_cutmix(rng, n, H, W, alpha):
    perm = rng.permutation(n)
    lam = rng.beta(alpha, alpha)
    cut = math.sqrt(1.0 - lam)
    cw, ch = int(W * cut), int(H * cut)
    cx, cy = rng.below(W), rng.below(H)
    clamp = lambda v, hi: min(max(v, 0), hi)
    return {"perm": perm, "lambda": lam,
            "box": (clamp(cx - cw // 2, W), clamp(cy - ch // 2, H), clamp(cx + cw // 2, W),
                    clamp(cy + ch // 2, H))}


# ---- the store ----
class LabelStore:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        head = self.f.read(16)
        if len(head) < 16 or head[:7] != b"LPLDLBL" or head[7:8] not in (b"1", b"2"):
            raise ValueError(f"{path}: not an lpld label store")
        n = struct.unpack("<Q", head[8:16])[0]
        text = self.f.read(n)
        (hh,) = struct.unpack("<Q", self.f.read(8))
        if xxh64(text) != hh:
            raise ValueError(f"{path}: header checksum mismatch")
        self.header = h = json.loads(zlib.decompress(text))
        self.version = h["format_version"]
        if self.version != int(head[7:8]):
            raise ValueError(f"{path}: magic and header disagree on the format")
        self.header_end = 24 + n
        self.C, self.N, self.B = h["num_classes"], h["num_images"], h["batch_size"]
        codec = h.get("codec", {"topk": 0, "values": h.get("dtype")})
        self.topk, self.values = codec["topk"], codec["values"]
        self.k = min(self.topk, self.C) if self.topk > 0 else self.C
        self.views_stored = h.get("views_stored", False)
        self.steps_kept = h["steps_kept"]
        self.bpe = -(-self.N // self.B)
        self._orders = {}
        if self.values not in VALUE_FORMATS:
            raise ValueError(f"{path}: unknown logit values '{self.values}'")
        self.bits, pb, self.max_relative = VALUE_FORMATS[self.values]
        vb = (self.k * self.bits + 7) // 8
        ib = (2 if self.C <= 65536 else 4) if self.k < self.C else 0
        self.value_bytes, self.param_bytes, self.index_bytes = vb, pb, ib
        self.row_bytes = vb + pb + ib * self.k
        # the fallback table (--image-labels): N rows and a checksum, before the records
        self.image_labels = h.get("image_labels", False)
        self.image_labels_bytes = self.N * self.row_bytes + 8 if self.image_labels else 0
        self.data_offset = self.header_end + self.image_labels_bytes

    def step_size(self, step):
        b = step % self.bpe
        return min(self.B, self.N - b * self.B)

    def views_bytes(self, n):
        if not self.views_stored:
            return 0
        return n * 21 + (4 + 8 + 2 * n if self.header["cutmix"] else 0)

    def record_bytes(self, n):
        return n * self.row_bytes + self.views_bytes(n) + (8 if self.version >= 2 else 0) + 8

    def offset(self, step):
        full = self.record_bytes(self.B)
        last = self.record_bytes(self.N - (self.bpe - 1) * self.B)
        e, b = divmod(step, self.bpe)
        return self.data_offset + e * ((self.bpe - 1) * full + last) + b * full

    def record(self, step):
        """The step's verified record bytes, checksum excluded."""
        if not 0 <= step < self.steps_kept:
            raise IndexError(f"step {step} is not in the label pool (0..{self.steps_kept - 1})")
        size = self.record_bytes(self.step_size(step))
        self.f.seek(self.offset(step))
        rec = self.f.read(size)
        (stored,) = struct.unpack("<Q", rec[-8:])
        if len(rec) != size or xxh64(rec[:-8], step) != stored:
            raise ValueError(f"{self.path}: record of step {step} is damaged")
        return rec[:-8]

    def rows(self, step):
        """Kept logits [n, k] (float32) and, with top-k, their classes [n, k] (else None)."""
        return self._decode(self.record(step), self.step_size(step))

    def image_rows(self):
        """The fallback table's rows (each image's whole view), all N images, as rows()."""
        if not self.image_labels:
            raise ValueError(f"{self.path}: no image labels (relabel with --image-labels)")
        size = self.image_labels_bytes
        self.f.seek(self.header_end)
        table = self.f.read(size)
        (stored,) = struct.unpack("<Q", table[-8:])
        if len(table) != size or xxh64(table[:-8], 2**64 - 1) != stored:
            raise ValueError(f"{self.path}: the image labels are damaged")
        return self._decode(table[:-8], self.N)

    def image_probs(self, T):
        """Each image's teacher distribution [N, C] at temperature T, from the fallback table."""
        return self._probs(*self.image_rows(), T)

    def _decode(self, data, n):
        raw = np.frombuffer(data, dtype=np.uint8)[: n * self.row_bytes]
        raw = raw.reshape(n, self.row_bytes)
        vb, pb = self.value_bytes, self.param_bytes
        col = lambda a, b: np.ascontiguousarray(raw[:, a:b])
        if self.values == "fp32":
            values = col(0, vb).view("<f4")
        elif self.values == "fp16":
            values = col(0, vb).view("<f2").astype(np.float32)
        elif self.values == "bf16":
            values = (col(0, vb).view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            q = col(0, vb)
            if self.bits < 8:  # 8 // bits values a byte, the first in the lowest bits
                mask = (1 << self.bits) - 1
                parts = [(q >> s) & mask for s in range(0, 8, self.bits)]
                q = np.stack(parts, axis=2).reshape(n, -1)[:, : self.k]
            if self.max_relative:  # levels below the row's maximum, a scale byte
                code = col(vb, vb + 1).astype(np.int32)
                scale = np.ldexp((16 + (code & 0xF)).astype(np.float32), (code >> 4) - 12)
                values = -(scale * q.astype(np.float32))
            else:
                params = col(vb, vb + pb).view("<f2").astype(np.float32)
                values = params[:, 1:2] + params[:, 0:1] * q.astype(np.float32)
        indices = None
        if self.k < self.C:
            ix = col(vb + pb, self.row_bytes)
            indices = (ix.view("<u2") if self.index_bytes == 2 else ix.view("<u4")).astype(np.int64)
        return values.reshape(n, self.k).astype(np.float32), indices

    def probs(self, step, T):
        """The teacher distribution [n, C] at temperature T: a softmax over the kept logits."""
        return self._probs(*self.rows(step), T)

    def _probs(self, values, indices, T):
        z = values.astype(np.float64) / T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if indices is None:
            return p
        full = np.zeros((p.shape[0], self.C))
        np.put_along_axis(full, indices, p, axis=1)
        return full

    def digest(self, step):
        return struct.unpack("<Q", self.record(step)[-8:])[0] if self.version >= 2 else None

    def epoch_order(self, epoch):
        if epoch not in self._orders:
            if len(self._orders) > 8:
                self._orders.clear()
            self._orders[epoch] = Rng(derive_seed(self.header["seed"], TAG_EPOCH_ORDER, epoch)).permutation(self.N)
        return self._orders[epoch]

    def plan(self, step, check=True):
        """What step `step` replays, regenerated from the seed: images (indices), views
        [(x0, y0, w, h), flip] and cutmix ({lambda, box (x1, y1, x2, y2), partners}) or None.
        With check, the plan's digest must equal the store's (format 2)."""
        h = self.header
        e, b = divmod(step, self.bpe)
        n = self.step_size(step)
        indices = self.epoch_order(e)[b * self.B: b * self.B + n]
        rng = Rng(derive_seed(h["seed"], TAG_VIEW, step))
        S = h["image_size"]
        views = [random_view(rng, S, S, h["crop"]) for _ in range(n)]
        mix = None
        if h["cutmix"]:
            mix = random_cutmix(Rng(derive_seed(h["seed"], TAG_CUTMIX, step)), n, S, S, h["cutmix_alpha"])
        plan = {"step": step, "images": indices, "views": views, "cutmix": mix}
        if check and self.version >= 2 and plan_digest(plan) != self.digest(step):
            raise ValueError(f"{self.path}: step {step}: the regenerated views do not match the "
                             f"store's digest (replay version {h.get('replay_version')}, this "
                             f"reader's {REPLAY_VERSION})")
        return plan

    def stored_views(self, step):
        """The views a --store-views store keeps (lambda is stored as float32)."""
        if not self.views_stored:
            raise ValueError(f"{self.path} does not store its views")
        n = self.step_size(step)
        block = self.record(step)[n * self.row_bytes: n * self.row_bytes + self.views_bytes(n)]
        pos = 0
        images = list(struct.unpack_from(f"<{n}I", block, pos)); pos += 4 * n
        boxes = np.frombuffer(block, dtype="<f4", count=4 * n, offset=pos).reshape(n, 4); pos += 16 * n
        flips = list(block[pos: pos + n]); pos += n
        views = [(tuple(np.float32(x) for x in boxes[i]), bool(flips[i])) for i in range(n)]
        mix = None
        if self.header["cutmix"]:
            (lam,) = struct.unpack_from("<f", block, pos); pos += 4
            box = struct.unpack_from("<4H", block, pos); pos += 8
            perm = list(struct.unpack_from(f"<{n}H", block, pos))
            mix = {"perm": perm, "lambda": lam, "box": box}
        return {"step": step, "images": images, "views": views, "cutmix": mix}


def plan_digest(plan):
    """xxh64 of what a step replays (src/labels/replay.cpp plan_digest)."""
    out = struct.pack("<qq", REPLAY_VERSION, plan["step"])
    out += b"".join(struct.pack("<q", i) for i in plan["images"])
    for (x0, y0, w, h), flip in plan["views"]:
        out += struct.pack("<ffffB", x0, y0, w, h, flip)
    mix = plan["cutmix"]
    out += struct.pack("<B", mix is not None)
    if mix is not None:
        out += struct.pack("<d", mix["lambda"]) + struct.pack("<4q", *mix["box"])
        out += b"".join(struct.pack("<q", q) for q in mix["perm"])
    return xxh64(out)


if __name__ == "__main__":
    s = LabelStore(sys.argv[1])
    h = s.header
    print(f"{sys.argv[1]}: format {s.version}, {s.N} images, {s.C} classes, "
          f"{s.steps_kept} of {h['epochs'] * s.bpe} steps, codec {s.values}"
          + (f" top-{s.topk}" if s.topk else ""))
    p = s.plan(0)
    print("step 0: images", p["images"][:8], "probs[0] max", s.probs(0, 1.0)[0].max())
