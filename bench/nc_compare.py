#!/usr/bin/python3
"""Compares two 2D images (BART .cfl) by the correlation of their magnitudes, and writes
windowed magnitude PNGs (bench/bench_noncart.sh).

  nc_compare.py corr A B [--crop N]   Pearson correlation of |A| and |B| (and the normalised
                                      inner product <|A|,|B|> / (|A| |B|)) on the common FOV:
                                      each image is centre-cropped to N x N (default: the
                                      smaller of the two matrices), i.e. the same pixels when
                                      both are on the same pixel grid (BART's nlinv -t output
                                      is on the recon matrix, its coils on the 2x grid)
  nc_compare.py png A OUT.png         |A| windowed to [0, 99.5th percentile], 8-bit grey
  nc_compare.py edge A                energy fraction of |A| outside a disc of half the
                                      matrix... (not used)
"""
import struct
import sys
import zlib

import numpy as np


def read_cfl(name):
    base = name[:-4] if name.endswith(('.cfl', '.hdr')) else name
    with open(base + '.hdr') as f:
        lines = [l for l in f.read().splitlines()]
    dims = [int(x) for x in lines[1].split()]
    data = np.fromfile(base + '.cfl', dtype=np.complex64)
    return data.reshape(dims, order='F')


def image2d(name):
    a = read_cfl(name)
    return np.squeeze(a).reshape(a.shape[0], a.shape[1], order='F') if a.ndim > 2 else a


def crop(a, n):
    x0 = a.shape[0] // 2 - n // 2
    y0 = a.shape[1] // 2 - n // 2
    return a[x0:x0 + n, y0:y0 + n]


def corr(a, b, n=None):
    n = n or min(a.shape[0], a.shape[1], b.shape[0], b.shape[1])
    ma, mb = np.abs(crop(a, n)).ravel(), np.abs(crop(b, n)).ravel()
    pearson = float(np.corrcoef(ma, mb)[0, 1])
    cosine = float(ma @ mb / (np.linalg.norm(ma) * np.linalg.norm(mb)))
    return pearson, cosine


def write_png(img, path):
    m = np.abs(img)
    hi = np.percentile(m, 99.5) or 1.0
    g = np.clip(m / hi * 255.0, 0, 255).astype(np.uint8).T  # rows = y
    raw = b''.join(b'\x00' + row.tobytes() for row in g)

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', g.shape[1], g.shape[0], 8, 0, 0, 0, 0))
    png += chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)


def main(argv):
    if len(argv) >= 4 and argv[1] == 'corr':
        n = int(argv[5]) if len(argv) > 5 and argv[4] == '--crop' else None
        p, c = corr(image2d(argv[2]), image2d(argv[3]), n)
        print('pearson=%.4f cosine=%.4f' % (p, c))
    elif len(argv) == 4 and argv[1] == 'png':
        write_png(image2d(argv[2]), argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
