#!/usr/bin/python3
"""How much of a reconstruction's error against a noisy fully sampled reference can be removed at all
(issue 13's real-brain target), and what is left for a better prior.

    /usr/bin/python3 bench/cs_floor.py FULL MAPS MASK REF IMAGE [IMAGE ...] [--seed S] [--draws N]
                                       [--target NRMSE]

FULL: the fully sampled 2D multi-coil k-space (.cfl base name, [1, ny, nz, C], centred, BART's
layout); MAPS: one ESPIRiT map set for it ([1, ny, nz, C], sum |s|^2 = 1 inside its support);
MASK: the sampling mask ([1, ny, nz]); REF: the reference, FULL combined with MAPS (`bart pics -S`);
IMAGEs: reconstructions of FULL * MASK ([1, ny, nz]). NRMSEs are of magnitudes after the
least-squares scale, as `recon5t compare --scale`.

What it prints:
  - sigma: the k-space noise std per coil and sample, from the part of FULL that no image through
    MAPS can explain: |z - s s^H z|^2 per voxel (z the coil images) has C - 1 noise dimensions inside
    the maps' support and C outside (white, unit-variance coils assumed: the data are whitened).
  - floors, by simulation: the first IMAGE's magnitude (scaled to REF) as a clean stand-in x0 for
    the truth, the reference remade as x0 + S^H F^H n with fresh noise n of that sigma, averaged
    over --draws:
      denoised floor: |x0| against it, the error of a reconstruction that removes all noise and is
                      otherwise perfect;
      sampled floor:  |x0 + S^H F^H (M n)| against it, one that also keeps the measured noise where
                      it sampled (the part of the reference's noise the data determine).
    No reconstruction of the undersampled data can go below the sampled floor in expectation; a
    denoising one sits near the denoised floor. excess = sqrt(NRMSE^2 - denoised floor^2) is then the
    part a better prior can still remove.
  - with --target: the excess a reconstruction at that NRMSE has;
  - per IMAGE: NRMSE, excess and (with --target) the share of its excess that must go to reach it.
"""
import os
import sys

import numpy as np

from nc_compare import read_cfl  # bench/ is the script's directory, first on sys.path


def inv(k):
    k = np.fft.ifftshift(k, axes=(0, 1))
    return np.fft.fftshift(np.fft.ifft2(k, axes=(0, 1), norm='ortho'), axes=(0, 1))


def nrmse_mag(img, ref):
    m = np.abs(img)
    m = m * (m * ref).sum() / max((m * m).sum(), 1e-30)
    return float(np.linalg.norm(m - ref) / np.linalg.norm(ref))


def main(argv):
    seed, draws, target, pos = 1, 3, None, []
    it = iter(argv)
    for a in it:
        if a == '--seed':
            seed = int(next(it))
        elif a == '--draws':
            draws = int(next(it))
        elif a == '--target':
            target = float(next(it))
        else:
            pos.append(a)
    if len(pos) < 5:
        sys.exit(__doc__.split('\n\n')[1])
    full, maps, mask, ref = (read_cfl(n) for n in pos[:4])
    ny, nz, nc = full.shape[1], full.shape[2], full.shape[3]
    y = full.reshape(ny, nz, nc).astype(np.complex128)
    s = maps.reshape(ny, nz, nc).astype(np.complex128)
    m = (np.abs(mask.reshape(ny, nz)) > 0).astype(float)
    refc = ref.reshape(ny, nz).astype(np.complex128)
    refm = np.abs(refc)
    supp = (np.abs(s) ** 2).sum(2) > 0.5

    z = inv(y)
    x = (np.conj(s) * z).sum(2)
    resid = z - s * x[..., None]
    dof = supp.sum() * (nc - 1) + (~supp).sum() * nc
    sigma = float(np.sqrt((np.abs(resid) ** 2).sum() / dof))

    def combine(k):
        return (np.conj(s) * inv(k)).sum(2)

    stand_in = pos[4]
    img0 = np.abs(read_cfl(stand_in).reshape(ny, nz)).astype(np.float64)
    img0 = img0 * (img0 * refm).sum() / (img0 * img0).sum() + 0j  # the noise is circular: |x0| is enough
    rng = np.random.default_rng(seed)
    den, smp = [], []
    for _ in range(draws):
        n = sigma * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
        ref_sim = img0 + combine(n)
        den.append(nrmse_mag(img0, np.abs(ref_sim)))
        smp.append(nrmse_mag(img0 + combine(m[..., None] * n), np.abs(ref_sim)))
    floor_d, floor_s = float(np.mean(den)), float(np.mean(smp))
    print('sigma %.4f per coil and sample (%d x %d, %d coils, %.1f %% sampled)' %
          (sigma, ny, nz, nc, 100 * m.mean()))
    print('floors (x0 = %s, %d draws): denoised %.4f, sampled %.4f' %
          (os.path.basename(stand_in), draws, floor_d, floor_s))

    def excess(e):
        return float(np.sqrt(max(e * e - floor_d * floor_d, 0.0)))

    t_ex = excess(target) if target is not None else None
    if t_ex is not None:
        print('target NRMSE %.4f: excess %.4f' % (target, t_ex))
    print('%-40s %7s %7s%s' % ('image', 'NRMSE', 'excess',
                               '  excess to remove for the target' if t_ex else ''))
    for name in pos[4:]:
        e = nrmse_mag(read_cfl(name).reshape(ny, nz), refm)
        ex = excess(e)
        cut = '  %.0f %%' % (100 * max(0.0, 1 - t_ex / ex)) if t_ex and ex > 0 else ''
        print('%-40s %7.4f %7.4f%s' % (os.path.basename(name)[-40:], e, ex, cut))


if __name__ == '__main__':
    main(sys.argv[1:])
