/* What a physicist asks first about a Pulseq sequence (`recon5t seq-report FILE.seq`, issue 18):
 * timing and events, FOV, k-space extent and resolution, the shape of the trajectory
 * (pulseq_kspace.h's classification), how densely it samples and how much it undersamples, and
 * which family of reconstruction recon5t would use for it. Also a picture of the trajectory.
 *
 * Definitions (per axis d of the sequence's x, y, z; k in 1/m, "cycles" = k FOV_d):
 *  - resolution: nominal 1/(2 max|k_d|) (the Nyquist voxel of a grid symmetric about k = 0, what
 *    a scanner's protocol calls the resolution); also 1/(k_max - k_min) (the extent actually
 *    covered: a 64-point readout sampled at half-integers spans 63 cycles) and FOV / matrix;
 *  - lines (Cartesian, EPI, ramp-sampled EPI): the distinct (k1, k2) grid positions of the
 *    readouts against the matrix[1] x matrix[2] grid; R = grid lines / lines acquired; the
 *    fully sampled centre is the run of acquired k1 lines through k1 = 0 (at k2 = 0 in 3D, and
 *    the run of k2 at k1 = 0);
 *  - spokes (non-Cartesian, every readout a straight line through or from the centre): angles in
 *    the kx-ky plane modulo pi (a spoke through the centre and its reverse are one line), the
 *    largest gap between neighbouring distinct angles against pi / spokes (even spacing), and
 *    Nyquist's pi/2 N spokes for a readout of N = matrix[0] points: R = (pi/2 N) / spokes;
 *  - density: ADC samples per grid point inside the sampled extent, per slice: the box
 *    [k_min, k_max] on the grid for the line kinds, the disc (ball in 3D) of radius max|k| for
 *    the others. 1 for a fully sampled Cartesian grid; a radial scan with readout
 *    oversampling 2 and Nyquist's spokes gives about 4 (dense centre, sparse edge).
 *
 * Library code: computes, formats, returns r5_status; the caller prints. */
#ifndef R5_IO_PULSEQ_REPORT_H
#define R5_IO_PULSEQ_REPORT_H

#include <stdio.h>

#include "pulseq_kspace.h"

/* The fully sampled centre a calibrating reconstruction needs: sampling_pattern.h's ESPIRiT rule,
 * 2 x kernel with recon5t's default kernel of 6. */
#define R5_SEQ_REPORT_CALIB_LINES 12

typedef enum r5_seq_report_signature {
	R5_SEQ_REPORT_SIGNATURE_MISSING = 0,  /* no md5 in the file */
	R5_SEQ_REPORT_SIGNATURE_VERIFIED = 1, /* md5 matches */
	R5_SEQ_REPORT_SIGNATURE_WRONG = 2,    /* md5 differs (read with the signature ignored) */
} r5_seq_report_signature;

typedef struct r5_seq_report {
	char file[1024];
	char version[48];     /* "1.4.0" */
	char name[128];       /* [DEFINITIONS] Name, "" when absent */
	r5_seq_report_signature signature;
	double duration_s;    /* the sum of the block durations */
	double total_duration_s; /* [DEFINITIONS] TotalDuration; NaN when absent */
	long n_blocks, n_excitations, n_refocusing, n_readouts, n_samples, n_slices;
	int two_d, n_axes;    /* axes encoded: 2 for a 2D sequence (|k2| < 1/2 cycle), else 3 */
	double fov_mm[3];     /* 0 when [DEFINITIONS] has no FOV for the axis */
	double kmin_m[3], kmax_m[3];           /* 1/m */
	double kmin_cycles[3], kmax_cycles[3]; /* cycles per FOV */
	double res_nominal_mm[3], res_extent_mm[3], res_voxel_mm[3]; /* NaN where undefined */
	r5_seq_grid grid;
	/* the readout's samples sit half-way between grid points (offset +-1/2 within 1e-3): Pulseq's
	 * ADC samples at (n + 1/2) dwell on a readout symmetric about k = 0 */
	int readout_half_sample;
	/* line kinds */
	long n_lines, n_grid_lines;
	double accel;           /* grid lines / lines acquired; NaN for non-Cartesian */
	long centre_lines[2];   /* the fully sampled run through k = 0 along k1 (and k2) */
	int centre_full;        /* the run covers every line or at least R5_SEQ_REPORT_CALIB_LINES */
	/* spokes */
	int radial;             /* every readout a straight line through or from the centre */
	long n_spokes, n_angles;
	double max_gap_rad, even_gap_rad; /* even_gap_rad = pi / n_angles (through the centre) */
	double nyquist_spokes;  /* pi/2 matrix[0] */
	double radial_accel;    /* nyquist_spokes / spokes per slice; NaN when not radial */
	double density;         /* samples per grid point in the sampled extent, per slice */
	const char *pipeline;   /* "cartesian", "cartesian after readout regridding", "non-cartesian" */
	char pipeline_text[320]; /* which pipelines and why, in words */
	/* What `auto` picks (recon/pipeline, which this layer cannot call: the caller fills these;
	 * auto_coils 0 leaves them out): the rule applied to this sampling with auto_coils coils, and,
	 * when checked, the choice for an actual phantom scan of the sequence ("" when not checked). */
	int auto_coils;
	char auto_pipeline[32], auto_reason[512], auto_phantom[32];
	char auto_phantom_error[512]; /* why the phantom check gave no answer ("" when it did or was not run) */
} r5_seq_report;

/* Fills the report from a parsed sequence and its trajectory. file: for the report. */
r5_status r5_seq_report_compute(const char *file, const r5_seq *seq, const r5_seq_kspace *ks,
				r5_seq_report_signature signature, r5_seq_report *out);
const char *r5_seq_report_signature_name(r5_seq_report_signature signature);

/* The k1-k2 lines of the first slice as a sampling mask, the way the scan builder fills it from
 * a phantom of this sequence (seq_phantom.h): mask[y + ny z] = 1 for the line at grid index
 * (i1, i2), y = (i1 + ny/2) mod ny (k1 = ny/2 wraps onto -ny/2), ny x nz = matrix[1] x matrix[2].
 * R5_EINVAL unless the grid is one of the line kinds (Cartesian, EPI, ramp-sampled EPI). */
r5_status r5_seq_report_line_mask(const r5_seq_kspace *ks, const r5_seq_grid *grid, unsigned char *mask);

/* Writes the report as text, or as one JSON object (the same fields; null for undefined
 * numbers). */
r5_status r5_seq_report_write_text(FILE *out, const r5_seq_report *r);
r5_status r5_seq_report_write_json(FILE *out, const r5_seq_report *r);

/* A PNG of the trajectory: the kx-ky plane (and a ky-kz panel beside it for a 3D sequence), k in
 * cycles per FOV, one scale for both axes (square pixels), k = 0 at the panel's centre with grey
 * axes, the grid's +-matrix/2 square outlined; every ADC sample a dot coloured by acquisition time
 * (blue first, through green and yellow, red last), consecutive samples of a readout joined by a
 * faint line of the same colour. size: the panel's width and height in pixels (64..8192). */
r5_status r5_seq_report_png(const char *path, const r5_seq_kspace *ks, const r5_seq_grid *grid, int size);

#endif
