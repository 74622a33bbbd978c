"""A synthetic golden-angle radial scan for the real-time service tests and bench/bench_realtime.py
(not a test itself: no test_ prefix).

k-space is analytic, so no NUFFT made it: the object is a few Gaussian blobs (one pulsing, so
frames differ), each coil's sensitivity a complex Gaussian; the product of two Gaussians is a
Gaussian, whose Fourier transform is known. Units and conventions as recon/linop/nufft.h: pixel
n_d sits at x_d = n_d - N_d/2, k in cycles per FOV, y = N^-1/2 sum f[n] exp(-2 pi i k.x / N)
(the continuous transform of the sampled Gaussian, which matches the sum to fp32 for sigma >= 1.5 px).
Spokes as BART's `bart traj -r -G` (golden angle pi/phi, 111.246 deg): sample i of a spoke at
radius (i - n_read/2) * N / n_read, so a 2x oversampled readout (n_read = 2N) spans [-N/2, N/2)
at half the k-spacing. The trajectory rides in each acquisition (ISMRMRD traj, 2 dims)."""
import numpy as np

GOLDEN = np.pi / ((1.0 + np.sqrt(5.0)) / 2.0)

XML = """<?xml version="1.0" encoding="UTF-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD">
  <version>1</version>
  <subjectInformation><patientName>PHANTOM^RADIAL</patientName><patientID>R5RT</patientID></subjectInformation>
  <studyInformation><studyDate>2026-12-02</studyDate><studyTime>06:00:00</studyTime></studyInformation>
  <measurementInformation><patientPosition>HFS</patientPosition><protocolName>r5_realtime_radial</protocolName></measurementInformation>
  <acquisitionSystemInformation><systemFieldStrength_T>5</systemFieldStrength_T><receiverChannels>{coils}</receiverChannels></acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>212887390</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace><matrixSize><x>{n}</x><y>{n}</y><z>1</z></matrixSize><fieldOfView_mm><x>{n}</x><y>{n}</y><z>5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>{n}</x><y>{n}</y><z>1</z></matrixSize><fieldOfView_mm><x>{n}</x><y>{n}</y><z>5</z></fieldOfView_mm></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_0><minimum>0</minimum><maximum>{read_max}</maximum><center>{read_center}</center></kspace_encoding_step_0>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{spoke_max}</maximum><center>0</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
    </encodingLimits>
    <trajectory>radial</trajectory>
  </encoding>
  <sequenceParameters><TR>2.2</TR><TE>1.2</TE><flipAngle_deg>10</flipAngle_deg></sequenceParameters>
</ismrmrdHeader>
"""


def header_xml(n, coils, n_read, n_spokes):
    return XML.format(n=n, coils=coils, read_max=n_read - 1, read_center=n_read // 2, spoke_max=n_spokes - 1)


def trajectory(n, n_read, first, count):
    """[count, n_read, 2] float32: (k0, k1) of spokes first .. first + count - 1, cycles per FOV."""
    radius = (np.arange(n_read) - n_read // 2) * (n / n_read)
    angle = (first + np.arange(count)) * GOLDEN
    k = np.empty((count, n_read, 2), np.float64)
    k[..., 0] = radius[None, :] * np.cos(angle)[:, None]
    k[..., 1] = radius[None, :] * np.sin(angle)[:, None]
    return k.astype(np.float32)


def _blobs(n, coils):
    """Object blobs (amplitude, centre x, centre y, sigma px, pulse) and coil Gaussians
    (centre x, centre y, width px, phase)."""
    s = n / 64.0
    blobs = [(1.0, 0.0, 0.0, 14.0 * s, 0.0), (0.6, -8.0 * s, 6.0 * s, 5.0 * s, 0.4),
             (0.8, 9.0 * s, -5.0 * s, 3.5 * s, 0.0), (0.5, 3.0 * s, 12.0 * s, 2.5 * s, 0.6)]
    angles = 2 * np.pi * np.arange(coils) / coils
    coil_list = [(0.45 * n * np.cos(a), 0.45 * n * np.sin(a), 0.55 * n, 0.7 * i) for i, a in enumerate(angles)]
    return blobs, coil_list


def kspace(n, coils, k, spoke_index, spokes_per_period=400, noise=0.0, seed=0):
    """Samples [coils, count, n_read] complex64 at trajectory k [count, n_read, 2] of spokes
    spoke_index[count] (the pulsing blobs follow each spoke's time)."""
    blobs, coil_list = _blobs(n, coils)
    kx = k[..., 0].astype(np.float64) / n
    ky = k[..., 1].astype(np.float64) / n
    k2 = kx * kx + ky * ky
    phase_t = 2 * np.pi * np.asarray(spoke_index, np.float64) / spokes_per_period
    out = np.zeros((coils,) + k.shape[:2], np.complex128)
    for amp, cx, cy, sigma, pulse in blobs:
        a_t = amp * (1.0 + pulse * np.sin(phase_t))[:, None]
        for ci, (px, py, tau, phi) in enumerate(coil_list):
            var = sigma * sigma * tau * tau / (sigma * sigma + tau * tau)
            mx = (cx * tau * tau + px * sigma * sigma) / (sigma * sigma + tau * tau)
            my = (cy * tau * tau + py * sigma * sigma) / (sigma * sigma + tau * tau)
            scale = np.exp(-((cx - px) ** 2 + (cy - py) ** 2) / (2 * (sigma * sigma + tau * tau)))
            out[ci] += (a_t * scale * np.exp(1j * phi) * 2 * np.pi * var / n
                        * np.exp(-2 * np.pi ** 2 * var * k2) * np.exp(-2j * np.pi * (kx * mx + ky * my)))
    if noise > 0:
        rng = np.random.default_rng(seed)
        out += noise * (rng.standard_normal(out.shape) + 1j * rng.standard_normal(out.shape))
    return out.astype(np.complex64)


def acquisition(pb, spoke, n_read, coils, samples, traj, tr_ms=2.2):
    """One Acquisition (spoke number `spoke`): samples [coils, n_read] complex64, traj [n_read, 2]."""
    acq = pb.Acquisition()
    acq.version = 1
    acq.scan_counter = spoke + 1
    acq.acquisition_time_stamp = int(spoke * tr_ms / 2.5)
    acq.number_of_samples = n_read
    acq.available_channels = coils
    acq.active_channels = coils
    acq.center_sample = n_read // 2
    acq.trajectory_dimensions = 2
    acq.sample_time_us = 2.0
    acq.position.extend([0.0, 0.0, 0.0])
    acq.read_dir.extend([1.0, 0.0, 0.0])
    acq.phase_dir.extend([0.0, 1.0, 0.0])
    acq.slice_dir.extend([0.0, 0.0, 1.0])
    acq.patient_table_position.extend([0.0, 0.0, 0.0])
    acq.idx.kspace_encode_step_1 = spoke
    flags = 0
    if spoke == 0:
        flags |= 1 << 0  # ACQ_FIRST_IN_ENCODE_STEP1
    acq.flags = flags
    acq.data = np.ascontiguousarray(samples, dtype="<c8").tobytes()
    acq.trajectory = np.ascontiguousarray(traj, dtype="<f4").tobytes()
    return acq


class Scan:
    """A whole scan in memory: trajectory [spokes, n_read, 2], samples [coils, spokes, n_read]."""

    def __init__(self, n=64, coils=4, n_spokes=100, oversampling=2, noise=0.0, seed=0):
        self.n, self.coils, self.n_spokes = n, coils, n_spokes
        self.n_read = oversampling * n
        self.traj = trajectory(n, self.n_read, 0, n_spokes)
        self.samples = kspace(n, coils, self.traj, np.arange(n_spokes), noise=noise, seed=seed)
        self.xml = header_xml(n, coils, self.n_read, n_spokes)

    def acquisition(self, pb, spoke):
        return acquisition(pb, spoke, self.n_read, self.coils, self.samples[:, spoke, :], self.traj[spoke])

    def messages(self, pb, params, batch=8, outputs=None, end=True, stop_after=None, job_id="rt",
                 pipeline="realtime", fmt=None):
        h = pb.ScanHeader(ismrmrd_xml=self.xml, pipeline=pipeline, client_job_id=job_id)
        for key, value in params.items():
            h.parameters.add(key=key, value=str(value))
        h.outputs.extend(outputs or [])
        if fmt is not None:
            h.format = fmt
        yield pb.ScanMessage(header=h)
        for start in range(0, self.n_spokes, batch):
            if stop_after is not None and start >= stop_after:
                return
            b = pb.AcquisitionBatch()
            b.acquisitions.extend(self.acquisition(pb, s) for s in range(start, min(start + batch, self.n_spokes)))
            yield pb.ScanMessage(batch=b)
        if end:
            yield pb.ScanMessage(end=pb.End())

    def write_cfl(self, prefix_ksp, prefix_traj):
        """BART files: k-space [1, n_read, spokes, coils], trajectory [3, n_read, spokes]."""
        ksp = np.transpose(self.samples, (2, 1, 0))[None]  # [1, n_read, spokes, coils]
        traj = np.zeros((3, self.n_read, self.n_spokes), np.complex64)
        traj[0] = self.traj[..., 0].T
        traj[1] = self.traj[..., 1].T
        write_cfl(prefix_ksp, ksp.astype(np.complex64))
        write_cfl(prefix_traj, traj)


def write_cfl(prefix, array):
    """BART .cfl/.hdr: dims in BART order (first fastest), complex64 column-major."""
    with open(prefix + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in array.shape) + "\n")
    np.asarray(array, np.complex64).ravel(order="F").tofile(prefix + ".cfl")


def read_cfl(prefix):
    with open(prefix + ".hdr") as f:
        f.readline()
        dims = [int(d) for d in f.readline().split()]
    return np.fromfile(prefix + ".cfl", np.complex64).reshape(dims, order="F")
