/* What a scan's ky-kz sampling pattern is, and what follows from it for the reconstruction:
 *   - its kind: every point sampled; a regular lattice (GRAPPA/SENSE-style uniform
 *     undersampling, CAIPIRINHA shifts, partial Fourier and elliptical shutters included); or
 *     irregular — variable density (the sampled fraction falls off with |k|, as Poisson-disc
 *     and VD random masks do; Lustig, Donoho & Pauly, MRM 58:1182, 2007) or uniform random;
 *   - which pipeline `auto` runs (r5_pipeline_auto_choice, pipeline.c, asks here);
 *   - whether the fully sampled centre is wide enough for ESPIRiT's maps (sense, cs).
 * Masks are ny * nz bytes, index y + ny * z, non-zero = sampled (r5_scan's `sampled`, first
 * frame). Library code: returns r5_status, logs nothing. */
#ifndef R5_PIPELINE_SAMPLING_PATTERN_H
#define R5_PIPELINE_SAMPLING_PATTERN_H

#include <stddef.h>

#include "../io/scan.h"

typedef enum r5_pattern_kind {
	R5_PATTERN_FULL = 0,             /* every point sampled */
	R5_PATTERN_LATTICE = 1,          /* regular: invariant under lattice translations */
	R5_PATTERN_VARIABLE_DENSITY = 2, /* irregular, density falls off with |k| */
	R5_PATTERN_UNIFORM_RANDOM = 3,   /* irregular, no falloff (or none measurable) */
} r5_pattern_kind;

/* Irregular patterns whose inner band is at least this much denser than the outer are variable
 * density (Poisson-disc masks measure about 2, BART's and recon5t's alike; uniform random 1). */
#define R5_PATTERN_VD_RATIO 1.3
/* A lattice vector v: a sampled point p (outside the centre block) has p + v sampled for at
 * least this fraction of the pairs inside the matrix (partial Fourier, elliptical corners and a
 * few missing lines cost a few %; random patterns stay near their density, < 0.6). */
#define R5_PATTERN_LATTICE_HIT 0.9

typedef struct r5_sampling_pattern {
	r5_pattern_kind kind;
	long n_sampled, n_total;
	/* the largest fully sampled centred block (r5_calib_region_find_mask), ky x kz widths;
	 * 0 x 0 when the centre itself is not sampled */
	long centre[2];
	/* LATTICE: the lattice vectors found, (dy, 0) and (dy, dz) (dz = 0 in 2D: only the first) */
	long lattice[2][2];
	/* sampled fraction outside the centre block for normalised radius rho < 0.5 over the one for
	 * 0.5 <= rho <= 1 (rho = |k| / k_max per axis, the corners beyond rho 1 left out);
	 * negative when a band holds too few points to tell */
	double density_ratio;
} r5_sampling_pattern;

/* Classifies the ny x nz mask. R5_EINVAL for no mask or an empty matrix. */
r5_status r5_sampling_pattern_classify(const unsigned char *mask, long ny, long nz, r5_sampling_pattern *out);
const char *r5_sampling_pattern_kind_name(r5_pattern_kind kind);
/* "variable density (inner/outer density 2.04), 24 x 24 fully sampled centre, 25.0% of 128 x 128
 * sampled" */
void r5_sampling_pattern_describe(const r5_sampling_pattern *p, long ny, long nz, char *text, size_t size);

/* A centre block at least this wide along every axis of size > 1 makes an irregular pattern a
 * compressed-sensing one for `auto` (a sampled centre point or a cross of lines is no region). */
#define R5_PATTERN_CS_CENTRE 4
/* Irregular patterns sampling more than this fraction are taken for a full scan with lines
 * dropped (or partial Fourier), not a compressed-sensing design: `auto` keeps its earlier rule. */
#define R5_PATTERN_CS_MAX_FRACTION 0.75

/* The pipeline `auto` runs: cs for an irregular pattern (variable density or uniform random)
 * with a fully sampled centre (R5_PATTERN_CS_CENTRE) and at most R5_PATTERN_CS_MAX_FRACTION
 * sampled, looked at in the first frame; otherwise as before: sense when the header says the
 * scan is accelerated or under half of the lines were sampled (partial Fourier leaves up to
 * ~45% out on one side), else cartesian. reason (may be NULL) gets why, for the log. */
const char *r5_sampling_pattern_auto_choice(const r5_scan *scan, char *reason, size_t size);

/* ESPIRiT (sense, cs) calibrates from the fully sampled centre by sliding a kernel-wide window
 * over it: it needs at least kernel + 1 positions per axis, a centre at least 2 x kernel wide
 * along every phase-encode axis of size > 1 (narrower ones gave zero maps or a failed
 * eigen-decomposition on the brain data). R5_EINVAL naming the pipeline, the block found and the
 * width needed — or calib_cap (the parameter calib, 0: none) when that is what cuts the block
 * below it. R5_OK for other pipelines. */
r5_status r5_sampling_pattern_check_calib(const r5_scan *scan, const char *pipeline, int kernel, int calib_cap);

#endif
