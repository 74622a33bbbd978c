/* A phantom scan along a Pulseq sequence's own trajectory (`recon5t phantom --seq FILE.seq`):
 * the analytic object's k-space (shepp_logan.h: no gridding, no inverse crime) at exactly the k
 * of every ADC sample that recon/io/pulseq_kspace.h computes, seen by the simulated coils, with
 * the noise and noise scan of phantom.h, written as ISMRMRD the way a scanner sends that kind of
 * sequence, and the ground truth at the sequence's resolution.
 *
 * How the samples are written, from r5_seq_kspace_grid's classification:
 *  - Lines (every readout at one k1 (and k2) on the grid) whose readout samples sit on the grid
 *    too and cover the same N0 grid points in every readout (Cartesian, EPI): counters and no
 *    trajectory, a line read backwards flagged ISMRMRD_ACQ_IS_REVERSE with its samples in time
 *    order (as a scanner sends EPI). header trajectory cartesian (epi when lines alternate).
 *    The grid may sit off the integers by a constant per-axis offset (Pulseq's ADC samples at
 *    (n + 1/2) dwell put a symmetric readout's samples half-way between integers) and may run
 *    over an asymmetric range (a spin echo's k1 from -N/2+1 to N/2, its refocusing pulse having
 *    negated the phase encoding). Both are exact for a DFT reconstruction: the samples are placed
 *    on the N-point grid by their integer index modulo N (k1 = N/2 goes to the row of -N/2: on an
 *    N-point grid the two are the same frequency), and an offset or a shift of the whole grid is
 *    a linear phase across the image, which the magnitude does not see.
 *  - Lines whose readout samples are not on the grid (ramp sampling) or differ between readouts:
 *    counters plus a one-dimensional trajectory (trajectory_dimensions 1: k0 of every sample in
 *    cycles per FOV), which the scan builder regrids onto the N0 integer grid (recon/io/scan.h).
 *  - Anything else (radial, spiral, ...): the 2D (3D) trajectory in cycles per FOV of an N x N
 *    (x N2) encoded space, N the smallest even number >= 2 max |k|, one acquisition per readout
 *    in time order, header trajectory radial when every readout is a straight line through the
 *    centre, other when not.
 *
 * Ground truth ("ground_truth"): the object band-limited to exactly the grid the reconstruction
 * fills — the analytic transform at every point of that grid (offsets and wrapping included;
 * the lines a partial-Fourier or undersampled sequence skips too: as phantom.h's truth, what a
 * perfect reconstruction of the fully sampled grid gives), centred unitary inverse FFT,
 * magnitude — so a perfect reconstruction of fully sampled noise-free data gives it to the
 * samples' distance from the grid (at most 1e-3 cycles: NRMSE 2e-5 for the spin echo of
 * ../shared/data/pulseq, 8e-5 for its EPI); for the non-Cartesian kinds the centred N x N grid
 * (as the dynamic phantom's truth). "object" is the voxel
 * average (phantom.h). One of each per slice; the vessel-wall kind adds its "wall_mask" on the
 * sequence's grid. Scaling, noise units and geometry are phantom.h's.
 *
 * The dynamic kind (dynamic.h: beating ring, contrast uptake) moves along the sequence's own
 * clock: each readout sees the object at its first sample's time (per_frame_motion: at its
 * frame's time). Frames are frame_spokes consecutive readouts (0: all of them, one frame); the
 * truth has one image per frame at the middle of its first and last readouts (repetition = frame),
 * and the header the frame userParameters of dynamic.h, spoke_time_ms = duration / readouts.
 *
 * From the parameters: kind (a 2D sequence — |k2| < 1/2 everywhere — takes shepp-logan or dynamic;
 * a 3D one shepp-logan (made 3D) or vessel-wall), coils, noise (sigma, correlation, noise-scan
 * samples), position, oblique angles, seed, field. From the sequence: matrix, FOV (its
 * [DEFINITIONS] FOV, required on the axes it encodes; the third value is the slice thickness of a
 * 2D sequence), dwell, sample times, slices (2D multi-slice: the order of the RF frequency
 * offsets; the slices are placed one thickness apart, since the offsets alone do not give the
 * distance), TR and TE when [DEFINITIONS] has them (seconds), else TR = duration / excitations and
 * TE the parameters'. */
#ifndef R5_PHANTOMS_SEQ_PHANTOM_H
#define R5_PHANTOMS_SEQ_PHANTOM_H

#include "../recon/io/pulseq_kspace.h"
#include "phantom.h"

typedef enum r5_seq_layout {
	R5_SEQ_LAYOUT_LINES = 0,  /* counters, no trajectory */
	R5_SEQ_LAYOUT_REGRID = 1, /* counters and a 1D readout trajectory */
	R5_SEQ_LAYOUT_TRAJ = 2,   /* a 2D/3D trajectory per readout */
} r5_seq_layout;

typedef struct r5_seq_phantom_summary {
	r5_seq_grid grid;        /* the classification of the trajectory */
	r5_seq_layout layout;
	int matrix[3];
	double fov_mm[3];
	long n_readouts, n_samples, n_reversed, n_slices, n_noise_acquisitions;
	long n_lines, n_grid_lines; /* distinct lines acquired / lines of the grid (LINES, REGRID) */
	int wrapped[3];          /* 1 when the grid indices on that axis were wrapped modulo N */
	double duration_s;
	double rss_min, rss_max;
	double seconds;
} r5_seq_phantom_summary;

/* Reads seq_path, simulates and writes out_path (replaced). p's matrix, FOV, sampling and
 * readout oversampling are not used (the sequence's are). Errors name the file. */
r5_status r5_seq_phantom_write(const struct r5_phantom_params *p, const char *seq_path, const char *out_path,
			       r5_seq_phantom_summary *summary);

const char *r5_seq_layout_name(r5_seq_layout layout);

#endif
