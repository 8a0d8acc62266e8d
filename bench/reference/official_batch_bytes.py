# Bytes of one label batch file in the official per-batch format (one torch.save per
# batch per epoch: crop coords, flip flags, CutMix permutation, lambda and box, fp16
# logits), measured by writing one with Debian's python3-torch. Not the official code:
# the same structure, to size it. Usage: /usr/bin/python3 official_batch_bytes.py B C
import io, sys
import torch

B, C = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
batch = [
    torch.rand(B, 4),                       # crop coords (fractions)
    torch.randint(0, 2, (B,)).bool(),       # flip status
    torch.randperm(B),                      # CutMix index
    0.37,                                   # CutMix lambda
    [3, 5, 17, 20],                         # CutMix box
    torch.randn(B, C).half(),               # teacher logits
]
buf = io.BytesIO()
torch.save(batch, buf)
print(len(buf.getvalue()))
