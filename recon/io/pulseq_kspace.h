/* The k-space trajectory a Pulseq sequence (pulseq.h) plays at every ADC sample, computed as
 * Pulseq's own calculateKspace (MATLAB mr.Sequence) / calculate_kspace (PyPulseq) does.
 *
 * Per block, each gradient axis is a piecewise-linear waveform in block time (s, Hz/m):
 *  - trapezoid: corners delay, +rise, +flat, +fall (exact);
 *  - shaped with a time shape (extended trapezoids): the points (delay + t_i raster, A s_i);
 *  - shaped on the gradient raster: the points (delay + (i + 1/2) raster, A s_i), with the first
 *    corner at delay (the last value of the same axis in the previous block, 0 when that block had
 *    none) and the last corner at delay + n raster extrapolated so that every raster value is the
 *    mean of its two corners (PyPulseq's read() of 1.4.0 files does the same);
 * integrated in closed form in double precision. k carries over from block to block.
 * RF: at the pulse's centre (delay + the time of the magnitude peak, the middle of the peaks
 * when several samples share it, as Pulseq's calcRfCenter) k := 0 for an excitation and
 * k := -k for a refocusing pulse. 1.4.0 files do not store the pulse's use, so it is taken from
 * the flip angle as calculateKspace does: 2 pi |sum_i A m_i e^(i phi_i)| dt < 90.01 degrees is an
 * excitation, anything larger refocuses.
 * ADC: sample n at delay + (n + 1/2) dwell in its block.
 *
 * Output: k in 1/m on the gradient axes (x, y, z of the sequence: x is the readout of every file
 * of ../shared/data/pulseq), in acquisition order, one row per ADC event; r5_seq_kspace_cycles
 * turns them into the project's units, cycles per FOV (k FOV_d, BART's and recon/linop/nufft.h's
 * convention), with the FOV from [DEFINITIONS] FOV (m). */
#ifndef R5_IO_PULSEQ_KSPACE_H
#define R5_IO_PULSEQ_KSPACE_H

#include "pulseq.h"

typedef struct r5_seq_readout {
	long block;        /* index into seq->blocks */
	long first;        /* index of its first sample in k / t */
	long n;            /* samples */
	double dwell_s;
	double slice_freq_hz; /* frequency offset of the excitation before it (0 when none) */
	long slice;        /* index of slice_freq_hz among the distinct offsets (1 Hz apart) */
} r5_seq_readout;

typedef struct r5_seq_kspace {
	long n_readouts, n_samples;
	r5_seq_readout *readouts;
	double *k;          /* [n_samples][3], 1/m */
	double *t;          /* [n_samples], s from the start of the sequence */
	long n_excitations, n_refocusing;
	long n_slices;
	double fov_m[3];    /* [DEFINITIONS] FOV; 0 when absent */
	double duration_s;
} r5_seq_kspace;

/* At most this many ADC samples in one sequence (32 bytes each here: 4 GiB): a small file can
 * name a 1e9-sample ADC in every block. */
#define R5_SEQ_MAX_SAMPLES (1L << 27)

/* Computes the trajectory. Errors (R5_EINVAL) name the block: a shaped gradient whose time shape
 * is not increasing, an RF without a magnitude shape; more than R5_SEQ_MAX_SAMPLES samples is
 * R5_ERANGE naming the readout that crosses it. */
r5_status r5_seq_kspace_compute(const r5_seq *seq, r5_seq_kspace *out);
void r5_seq_kspace_free(r5_seq_kspace *ks); /* zeroed: harmless */

/* The k of sample i in cycles per FOV (k_d FOV_d; an axis without a FOV gives k_d in 1/m). */
void r5_seq_kspace_cycles(const r5_seq_kspace *ks, long i, double cycles[3]);

/* The shape of the trajectory, for the reconstruction and seq-report. */
typedef enum r5_seq_kind {
	R5_SEQ_CARTESIAN = 0, /* every sample on the grid after a constant per-axis offset */
	R5_SEQ_EPI = 1,       /* on the grid, readouts alternating in direction */
	R5_SEQ_EPI_RAMP = 2,  /* lines of constant k1 on the grid, readout samples not uniform */
	R5_SEQ_NONCARTESIAN = 3,
} r5_seq_kind;

typedef struct r5_seq_grid {
	r5_seq_kind kind;
	int two_d;               /* |k2| < 1/2 cycle everywhere */
	double offset[3];        /* per-axis offset of the samples from integers (cycles), in (-1/2, 1/2] */
	double max_grid_error;   /* largest distance of a sample from offset + an integer (cycles; axes used) */
	double kmin[3], kmax[3]; /* extent, cycles per FOV */
	int matrix[3];           /* 2 round(max |k_d|), at least 1 (cycles of the extent) */
	long n_reversed;         /* readouts whose k0 decreases */
	double line_error;       /* largest spread of k1 (cycles) within a readout */
} r5_seq_grid;

/* Classifies the trajectory (tolerance 1e-3 cycles for "on the grid", 2e-3 for a constant k1
 * within a readout). */
void r5_seq_kspace_grid(const r5_seq_kspace *ks, r5_seq_grid *grid);
const char *r5_seq_kind_name(r5_seq_kind kind);

#endif
