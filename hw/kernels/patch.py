"""Patch-based int8 convolution (MCUNetV2, NeurIPS'21, section 3.1): a chain of convolutions run
patch by patch over an n x n grid of the chain's output, each patch reading its receptive field
(the halo of overlapping rows and columns recomputed), stitched into the whole output.

int8 operands, int32 accumulation (as CMSIS-NN / TinyEngine kernels do), and between layers a
fixed requantization back to int8 (arithmetic right shift, then clip to [-128, 127]) — the same
in both paths, so a correct patch schedule equals the whole-tensor chain bit for bit.

Layouts as hw/kernels/conv.py: x[h, w, c] (one image), weights w[kh, kw, c / groups, out_c],
symmetric zero padding; a patch is computed in global coordinates, so padding is applied only
where the patch touches the tensor's border. The region arithmetic is written here again (not
imported from mappers/mcu.py) so that the check is independent of the planner.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _conv_region(x, r0, c0, w, stride, padding, groups, in_h, in_w, o_r0, o_r1, o_c0, o_c1):
    """Output rows [o_r0, o_r1) x cols [o_c0, o_c1) of a grouped conv, int32, from `x`: the
    input rows/cols starting at global (r0, c0); pixels outside [0, in_h) x [0, in_w) are padding."""
    kh, kw, cg, out_c = w.shape
    og = out_c // groups
    out = np.zeros((o_r1 - o_r0, o_c1 - o_c0, out_c), dtype=np.int32)
    for y in range(o_r0, o_r1):
        for z in range(o_c0, o_c1):
            for oc in range(out_c):
                g = oc // og
                acc = 0
                for i in range(kh):
                    yy = y * stride - padding + i
                    if yy < 0 or yy >= in_h:
                        continue
                    for j in range(kw):
                        zz = z * stride - padding + j
                        if zz < 0 or zz >= in_w:
                            continue
                        for c in range(cg):
                            acc += np.int32(x[yy - r0, zz - c0, g * cg + c]) * np.int32(w[i, j, c, oc])
                out[y - o_r0, z - o_c0, oc] = acc
    return out


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def requantize(acc: np.ndarray, shift: int) -> np.ndarray:
    """int32 -> int8: arithmetic right shift, clip (a fixed stand-in for TFLite's multiplier)."""
    return np.clip(acc >> shift, -128, 127).astype(np.int8)


def conv_layer(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int) -> np.ndarray:
    """One whole-tensor int8 conv, int32 out."""
    h, wd, _ = x.shape
    oh, ow = out_size(h, w.shape[0], stride, padding), out_size(wd, w.shape[1], stride, padding)
    return _conv_region(x, 0, 0, w, stride, padding, groups, h, wd, 0, oh, 0, ow)


def chain_whole(x: np.ndarray, layers, shift: int = 7) -> np.ndarray:
    """`layers`: [(w, stride, padding, groups)]; whole tensors, requantized between layers."""
    for w, s, p, g in layers:
        x = requantize(conv_layer(x, w, s, p, g), shift)
    return x


def chain_patches(x: np.ndarray, layers, grid: int, shift: int = 7) -> tuple[np.ndarray, int]:
    """The same chain, patch by patch over a grid x grid cut of its output; returns (output, MACs
    computed, halos included)."""
    sizes = [(x.shape[0], x.shape[1])]
    for w, s, p, _ in layers:
        h, wd = sizes[-1]
        sizes.append((out_size(h, w.shape[0], s, p), out_size(wd, w.shape[1], s, p)))
    H, W = sizes[-1]
    out_c = layers[-1][0].shape[3]
    out = np.empty((H, W, out_c), dtype=np.int8)
    macs = 0
    for pi in range(grid):
        for pj in range(grid):
            regions = [None] * (len(layers) + 1)
            regions[-1] = ((pi * H) // grid, ((pi + 1) * H) // grid, (pj * W) // grid, ((pj + 1) * W) // grid)
            for li in range(len(layers) - 1, -1, -1):        # receptive field, layer by layer back
                w, s, p, _ = layers[li]
                r0, r1, c0, c1 = regions[li + 1]
                ih, iw = sizes[li]
                regions[li] = (max(0, r0 * s - p), min(ih, (r1 - 1) * s - p + w.shape[0]),
                               max(0, c0 * s - p), min(iw, (c1 - 1) * s - p + w.shape[1]))
            r0, r1, c0, c1 = regions[0]
            t = np.ascontiguousarray(x[r0:r1, c0:c1])
            for li, (w, s, p, g) in enumerate(layers):
                i0, _, j0, _ = regions[li]
                o = regions[li + 1]
                acc = _conv_region(t, i0, j0, w, s, p, g, sizes[li][0], sizes[li][1], *o)
                macs += acc.size * w.shape[0] * w.shape[1] * w.shape[2]
                t = requantize(acc, shift)
            a, b, c, d = regions[-1]
            out[a:b, c:d] = t
    return out, macs
