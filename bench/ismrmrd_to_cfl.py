#!/usr/bin/python3
"""ISMRMRD phantom file -> BART .cfl k-space [x, y, z, coil] (and the ground truth image).

Used by bench_pi.sh so that BART and recon5t reconstruct the SAME k-space: acquisitions are
placed by kspace_encode_step_1/2 into the encoded matrix, the readout oversampling is removed
by an inverse FFT along x, a centred crop to the recon matrix and a forward FFT (both centred,
unitary), unsampled points stay zero. Only the first slice/contrast/repetition is kept.

usage: ismrmrd_to_cfl.py IN.h5 OUT_PREFIX   -> OUT_PREFIX.{cfl,hdr} and OUT_PREFIX_truth.{cfl,hdr}
"""
import re
import sys

import h5py
import numpy as np


def write_cfl(prefix, array):
    dims = list(array.shape) + [1] * (16 - array.ndim)
    with open(prefix + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    array.astype(np.complex64).ravel(order="F").tofile(prefix + ".cfl")


def matrix(xml, space):
    block = re.search(r"<%s>.*?<matrixSize>(.*?)</matrixSize>" % space, xml, re.S).group(1)
    return [int(re.search(r"<%s>(\d+)</%s>" % (a, a), block).group(1)) for a in "xyz"]


def centred(fn, a, axis):
    return np.fft.fftshift(fn(np.fft.ifftshift(a, axes=axis), axis=axis, norm="ortho"), axes=axis)


def main():
    src, prefix = sys.argv[1], sys.argv[2]
    with h5py.File(src, "r") as f:
        xml = f["dataset/xml"][0]
        xml = xml.decode() if isinstance(xml, bytes) else str(xml)
        enc, rec = matrix(xml, "encodedSpace"), matrix(xml, "reconSpace")
        acqs = f["dataset/data"][:]
        truth = f["dataset/ground_truth/data"][:] if "dataset/ground_truth/data" in f else None
    head0 = acqs[0]["head"]
    n_coils, n_samples = int(head0["active_channels"]), int(head0["number_of_samples"])
    kspace = np.zeros((n_samples, enc[1], enc[2], n_coils), np.complex64)
    for acq in acqs:
        h = acq["head"]
        idx = h["idx"]
        if int(h["flags"]) & (1 << 18):  # noise measurement
            continue
        if idx["slice"] or idx["contrast"] or idx["repetition"]:
            continue
        d = np.asarray(acq["data"], np.float32).view(np.complex64).reshape(n_coils, n_samples)
        kspace[:, idx["kspace_encode_step_1"], idx["kspace_encode_step_2"], :] = d.T
    if n_samples != rec[0]:
        img = centred(np.fft.ifft, kspace, 0)
        o = (n_samples - rec[0]) // 2
        kspace = centred(np.fft.fft, img[o:o + rec[0]], 0).astype(np.complex64)
    write_cfl(prefix, kspace)
    if truth is not None:  # ISMRMRD image data [.., z, y, x] -> [x, y, z]
        t = truth.reshape(truth.shape[-3:]).transpose(2, 1, 0)
        write_cfl(prefix + "_truth", t)


if __name__ == "__main__":
    main()
