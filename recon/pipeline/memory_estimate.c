/* Peak host memory of a reconstruction (memory_estimate.h): r5_recon_run's allocations replayed
 * on a ledger, stage by stage, in the order the pipelines make and free them.
 *
 * Notation in the comments: K = k-space elements (x y z coil frames), V = one frame's voxels
 * (nx ny nz), C = coils after prewhitening/compression, M = ESPIRiT map sets; an element is a
 * complex float (8 bytes) unless a comment says double (16 bytes).
 *
 *   scan        K + noise + 3 byte masks (held by the caller throughout)
 *   prepare     prewhitening: a whitened copy of K and the noise; compression: the central
 *               block, per-x matrices and frame work arrays (geometric), then K C/C_in
 *   cartesian   a copy of K, the combined images K/C, Walsh arrays (adaptive), recon matrix
 *   sense       images (and g-factor) K/C; per frame: the frame, the ACS block, ESPIRiT
 *               (Gram n x n double, its eigenvectors, P = V V^H, then per slab of readout
 *               positions the grid of C x C matrices three times: grid, its host copy and the
 *               transposed matrices), maps V C M, the SENSE operator by coil groups (maps
 *               scratch and chain buffer, V C each over the groups; a group sum V M and, with
 *               two map sets, the maps copied per group), CG vectors (5 x V M), the residual
 *               check (V C)
 *   cs          sense's arrays and the solver's vectors (image-sized), for the whole frame; a
 *               decoupled 3D frame (cs_slab.c) holds the vectors, the operator and gathered
 *               copies of k-space and maps per slab of x positions instead (and no CG vectors)
 *   grappa      a copy of K, coil images and scratch (V C each), combined (and g-factor) K/C;
 *               per frame: calibration matrices A, T (and their copies for the zgemm), the
 *               kernel, and in image space the mixing rows of one group of input coils (V G;
 *               the g-factor adds weights and q, V C each)
 *   images out  r5_pipeline_to_recon_matrix: a copy, crop and resize, the host result (kept)
 *
 * A CUDA context keeps the work arrays on the device: host memory is then the scan, the host
 * staging arrays of ESPIRiT (calibration, Gram, eigenvectors and one slab's host grid), the
 * GRAPPA calibration matrices and kernel, mask uploads and the images copied back. Device
 * memory is a separate budget (not estimated here); on the device the same ledger applies with
 * the host-only arrays left out. */
#include "memory_estimate.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coil_prep.h"
#include "nc_cs.h"
#include "../calib/coil_compress.h"
#include "../calib/espirit.h"
#include "../calib/grappa.h"
#include "../core/eig_math.h"
#include "../core/threads.h"
#include "cs_slab.h"
#include "grid.h"
#include "pipelines.h"

/* What the process holds besides the arrays: FFTW plans and twiddles, OpenMP thread stacks,
 * code pages first touched, small descriptors (2 to 4 MiB measured with `recon5t recon
 * --memory-report`), and per OpenMP thread the buffers FFTW's buffered solvers allocate while
 * a transform runs: up to 256 rows of the transform length (+ 6 of skew). */
#define R5_EST_RUNTIME_BYTES (8.0 * 1048576.0)
#define R5_EST_FFTW_ROWS 256
#define R5_EST_FFTW_SKEW 6

#define R5_EST_RAMP_SHAPES 64

struct ledger {
	double now, peak;
	int n_ramps;
	struct {
		long dims[R5_DIMS];
		unsigned long flags;
	} ramps[R5_EST_RAMP_SHAPES];
};

static void hold(struct ledger *l, double bytes)
{
	l->now += bytes;
	if (l->now > l->peak)
		l->peak = l->now;
}

static void drop(struct ledger *l, double bytes) { l->now -= bytes; }

static double elements(long n) { return (double)n * (double)sizeof(float complex); }
static double doubles_c(long n) { return (double)n * (double)sizeof(double complex); }
static double dims_bytes(const long dims[R5_DIMS]) { return elements(r5_dims_size(dims)); }

/* dims with dimension d set to n */
static void dims_with(long out[R5_DIMS], const long dims[R5_DIMS], int d, long n)
{
	r5_dims_copy(out, dims);
	out[d] = n;
}

/* A centred FFT (fft.c): the context caches two ramps over the transformed dims per (dims,
 * flags), made on the host and copied where the context computes. */
static void fft_ramps(struct ledger *l, const long dims[R5_DIMS], unsigned long flags)
{
	unsigned long used = 0;
	long n = 1;
	for (int d = 0; d < R5_DIMS; d++)
		if ((flags & (1UL << d)) && dims[d] > 1) {
			used |= 1UL << d;
			n *= dims[d];
		}
	if (!used)
		return;
	for (int i = 0; i < l->n_ramps; i++)
		if (l->ramps[i].flags == used && r5_dims_equal(l->ramps[i].dims, dims))
			return;
	if (l->n_ramps < R5_EST_RAMP_SHAPES) {
		r5_dims_copy(l->ramps[l->n_ramps].dims, dims);
		l->ramps[l->n_ramps++].flags = used;
	}
	hold(l, 4 * elements(n));
	drop(l, 2 * elements(n));
}

/* A host mask [1, ny, nz] made and copied to the work residency (the copy is kept). */
static void mask_upload(struct ledger *l, long plane)
{
	hold(l, 2 * elements(plane));
	drop(l, elements(plane));
}

/* --- coil combination (combine.c) --- */

static long block_size(long n, long max_block)
{
	for (long b = max_block; b > 1; b--)
		if (n % b == 0)
			return b;
	return 1;
}

/* r5_zrss: |x|^2 of the whole input first. */
static void rss(struct ledger *l, const long in_dims[R5_DIMS])
{
	hold(l, dims_bytes(in_dims));
	drop(l, dims_bytes(in_dims));
}

/* Walsh arrays for coil images dims (one volume at a time), held while combining, and the
 * partial sums r5_zsum makes while summing the blocks (over bx, then by, into bz). */
static double walsh_bytes(const long dims[R5_DIMS])
{
	const long b[3] = {block_size(dims[0], 8), block_size(dims[1], 8), block_size(dims[2], 4)};
	long X = dims[0] / b[0], Y = dims[1] / b[1], Z = dims[2] / b[2], C = dims[R5_DIM_COIL], P = X * Y * Z;
	long volume = dims[0] * dims[1] * dims[2], partial = volume * C, sums = 0, n_reduced = 0;
	for (int d = 0; d < 3; d++)
		n_reduced += b[d] > 1;
	for (int d = 0, k = 0; d < 3; d++)
		if (b[d] > 1 && ++k < n_reduced) {
			partial /= b[d];
			sums += partial;
		}
	/* prod, cov, mats, evals, weights, phase_ref, tmp_ref */
	return elements(volume * C + 2 * P * C * C + (P * C + 1) / 2 + P * C + 2 * P + sums);
}

static void combine(struct ledger *l, const char *method, const long coil_dims[R5_DIMS])
{
	if (method && (!strcmp(method, "adaptive") || !strcmp(method, "walsh"))) {
		hold(l, walsh_bytes(coil_dims));
		drop(l, walsh_bytes(coil_dims));
	} else {
		rss(l, coil_dims);
	}
}

/* --- r5_pipeline_to_recon_matrix (pipeline.c); the host result stays held --- */

static void resize(struct ledger *l, long img[R5_DIMS], const long target[R5_DIMS], int in_kspace)
{
	if (r5_dims_equal(img, target))
		return;
	unsigned long flags = 0;
	for (int d = 0; d < 3; d++)
		if (img[d] != target[d])
			flags |= 1UL << d;
	hold(l, dims_bytes(target));
	if (in_kspace) {
		fft_ramps(l, img, flags);
		fft_ramps(l, target, flags);
	}
	drop(l, dims_bytes(img));
	r5_dims_copy(img, target);
}

static void to_recon_matrix(struct ledger *l, const r5_scan *scan, const long in_dims[R5_DIMS])
{
	long crop[R5_DIMS], target[R5_DIMS], img[R5_DIMS];
	r5_pipeline_recon_matrix_dims(&scan->header, in_dims, crop, target);
	r5_dims_copy(img, in_dims);
	hold(l, dims_bytes(img));
	resize(l, img, crop, 0);
	resize(l, img, target, 1);
	if (img[R5_DIM_AVG] > 1) {
		long mean[R5_DIMS];
		dims_with(mean, img, R5_DIM_AVG, 1);
		hold(l, dims_bytes(mean));
		drop(l, dims_bytes(img));
		r5_dims_copy(img, mean);
	}
	hold(l, dims_bytes(img)); /* set->images (or set->gfactor): kept */
	drop(l, dims_bytes(img));
}

/* --- r5_coils_prepare (coil_compress.c) --- */

struct work_scan {
	long kdims[R5_DIMS]; /* k-space the pipeline sees: coils after compression */
	double owned;         /* bytes of its k-space and noise that are not the scan's */
};

/* Coil compression of work k-space kdims (C coils) into n virtual coils. */
static void compress(struct ledger *l, const r5_recon_params *p, r5_cc_mode mode, int n, long kdims[R5_DIMS])
{
	long C = kdims[R5_DIM_COIL], nx = kdims[0], block[R5_DIMS], frame[R5_DIMS], frame_out[R5_DIMS], out[R5_DIMS];
	long calib = p->calib_size > 0 ? p->calib_size : r5_cc_defaults.calib[0];
	r5_dims_ones(block);
	for (int d = 0; d < 4; d++)
		block[d] = kdims[d];
	r5_dims_copy(frame, block);
	dims_with(frame_out, frame, R5_DIM_COIL, n);
	dims_with(out, kdims, R5_DIM_COIL, n);
	for (int d = 1; d <= 2; d++)
		if (calib > 0 && calib < block[d])
			block[d] = calib;
	hold(l, dims_bytes(block));
	if (mode == R5_CC_SVD) {
		hold(l, dims_bytes(out));
	} else {
		double matrices = doubles_c(C * C * nx), grams = doubles_c(C * C * (nx + 1));
		hold(l, matrices + grams);
		fft_ramps(l, block, 1UL);
		hold(l, dims_bytes(block)); /* the block transposed */
		drop(l, dims_bytes(block) + grams);
		hold(l, dims_bytes(out));
		/* per-x matrices uploaded, the frame in x-ky-kz and transposed, the output transposed */
		double apply = elements(C * n * nx) + 2 * dims_bytes(frame) + dims_bytes(frame_out);
		hold(l, apply);
		fft_ramps(l, frame, 1UL);
		fft_ramps(l, frame_out, 1UL);
		drop(l, apply + matrices);
	}
	drop(l, dims_bytes(block));
	r5_dims_copy(kdims, out);
}

static r5_status prepare(struct ledger *l, const r5_scan *scan, const r5_recon_params *p, struct work_scan *w)
{
	const r5_array *k = scan->kspace;
	double noise = scan->noise ? dims_bytes(scan->noise->dims) : 0, work_k = 0, work_noise = 0;
	r5_dims_copy(w->kdims, k->dims);
	if (p->prewhiten && scan->noise) { /* whitened copies of k-space and noise */
		work_k = dims_bytes(k->dims);
		work_noise = noise;
		hold(l, work_k + work_noise);
	}
	int n_virtual = p->n_virtual_coils;
	float energy = n_virtual > 0 ? 0.0f : p->coil_energy;
	if (n_virtual > 0 || energy > 0) {
		long C = k->dims[R5_DIM_COIL];
		/* an energy criterion keeps a number of coils only the data tell: at most all of them */
		int n = n_virtual > 0 && n_virtual < C ? n_virtual : (int)C;
		r5_cc_mode mode;
		R5_TRY(r5_cc_mode_parse(p->cc_mode, &mode));
		if (mode == R5_CC_AUTO)
			mode = k->dims[R5_DIM_Z] > 1 ? R5_CC_GEOMETRIC : R5_CC_SVD;
		if (mode == R5_CC_GEOMETRIC && k->dims[0] < 2)
			mode = R5_CC_SVD;
		compress(l, p, mode, n, w->kdims);
		double noise_out = scan->noise ? noise * n / (double)C : 0;
		hold(l, noise_out);
		drop(l, work_k + (scan->noise ? work_noise : 0));
		work_k = dims_bytes(w->kdims);
		work_noise = noise_out;
	}
	w->owned = work_k + work_noise;
	return R5_OK;
}

/* --- cartesian.c --- */

static void cartesian(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS])
{
	long combined[R5_DIMS];
	dims_with(combined, kdims, R5_DIM_COIL, 1);
	hold(l, dims_bytes(kdims)); /* k-space copied where the context computes, transformed in place */
	fft_ramps(l, kdims, R5_FLAG(R5_DIM_X) | R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z));
	hold(l, dims_bytes(combined));
	combine(l, p->cartesian.combine, kdims);
	drop(l, dims_bytes(kdims));
	to_recon_matrix(l, work, combined);
	drop(l, dims_bytes(combined));
}

/* --- ESPIRiT (espirit.c) --- */

/* Steps 1-3a: calibration block, Gram matrix and its eigenvectors (host, double), P = V V^H. */
static void espirit_calibrate(struct ledger *l, const r5_espirit_conf *conf, const long acs[R5_DIMS], long *n_coils,
			      long kd[3])
{
	long c[3], C = acs[R5_DIM_COIL], n_rows = 1, n_kernel = 1;
	for (int d = 0; d < 3; d++) {
		c[d] = conf->calib > 0 && acs[d] > conf->calib ? conf->calib : acs[d];
		kd[d] = acs[d] > 1 ? conf->kernel : 1;
		n_rows *= c[d] - kd[d] + 1 > 0 ? c[d] - kd[d] + 1 : 1;
		n_kernel *= kd[d];
	}
	long n = n_kernel * C, block = c[0] * c[1] * c[2] * C;
	/* the kernels kept are the signal subspace: at most the rank of the calibration matrix */
	long kept = n_rows < n ? n_rows : n;
	*n_coils = C;
	hold(l, dims_bytes(acs)); /* the ACS block copied to the host */
	hold(l, elements(block));
	drop(l, dims_bytes(acs));
	double gram = doubles_c(n * n) + (double)n * sizeof(double);
	hold(l, gram);
	double tables = doubles_c((c[0] + 1) * (c[1] + 1) * (c[2] + 1)) * r5_max_threads();
	hold(l, tables);
	drop(l, tables);
	/* r5_herm_eig_top: q (double complex) and z (double) n x n, vectors of n */
	double eig = doubles_c(n * n) + (double)n * n * sizeof(double) + doubles_c(4 * n) + 10.0 * n * sizeof(double);
	hold(l, eig);
	drop(l, eig + elements(block));
	long D = (2 * kd[0] - 1) * (2 * kd[1] - 1) * (2 * kd[2] - 1);
	hold(l, doubles_c(D * C * C)); /* kernel-offset sums G_delta, held to the end */
	/* kernel_offsets: V_r and V_r^H on the host and where the context computes, P and its host copy */
	double offsets = 4 * elements(n * kept) + 2 * elements(n * n);
	hold(l, offsets);
	drop(l, offsets + gram);
}

/* Step 3b-4: per slab of readout positions, C x C matrices per pixel and their eigenvectors. */
static void espirit_slabs(struct ledger *l, long C, const long img[3])
{
	long CC = C * C, plane = img[1] * img[2];
	long bx = R5_PROGRESS_CHUNK_VALUES / (plane * CC); /* as all_slabs in espirit.c */
	bx = bx < 1 ? 1 : bx > img[0] ? img[0] : bx;
	while (img[0] % bx)
		bx--;
	long npix = bx * plane, grid[R5_DIMS];
	r5_dims_ones(grid);
	grid[0] = bx;
	grid[1] = img[1];
	grid[2] = img[2];
	grid[3] = CC;
	/* grid, mats, evals (floats), slab, mask */
	double slabs = elements(2 * npix * CC + (npix * C + 1) / 2 + npix * C + npix);
	hold(l, slabs);
	hold(l, elements(npix * CC)); /* slab_matrices' host grid */
	fft_ramps(l, grid, R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z));
	drop(l, elements(npix * CC));
	/* zheev_top_batched's scratch per thread, eigenvalues on the host, host and work masks */
	double eigs = (double)R5_EIG_SCRATCH(C) * sizeof(double) * r5_max_threads() + elements((npix * C + 1) / 2 + 2 * npix);
	hold(l, eigs);
	drop(l, eigs + slabs);
}

/* r5_espirit_maps: maps [nx, ny, nz, C, M] stay held. */
static void espirit(struct ledger *l, const r5_espirit_conf *conf, const long acs[R5_DIMS], const long img[3],
		    double *maps)
{
	long C = 0, kd[3];
	espirit_calibrate(l, conf, acs, &C, kd);
	long D = (2 * kd[0] - 1) * (2 * kd[1] - 1) * (2 * kd[2] - 1), npix = img[0] * img[1] * img[2];
	*maps = elements(npix * C * conf->n_maps);
	double eig_host = (double)npix * conf->n_maps * sizeof(float);
	hold(l, *maps + eig_host);
	espirit_slabs(l, C, img);
	drop(l, eig_host + doubles_c(D * C * C));
}

/* --- sense.c: one frame is representative (frames have one shape; maps are made per slice) --- */

/* The operator r5_linop_sense_grouped holds for k-space kdims (a frame, or a slab of one) with
 * n_maps map sets: coil groups of R5_PROGRESS_CHUNK_VALUES / V coils, as sense.c; the groups
 * share one group's coil images (the chain's middle array, made at the first application) and one
 * fft-sample operator per distinct group size (a shifted mask each, made from host copies); with
 * more than one group and two map sets, contiguous copies of the maps per group (the groups add
 * into the output: no image of their own). The maps operator holds no coil-sized scratch
 * (recon/linop: r5_linop_bytes_held). *group_coils (unless NULL): the coils of a group (all of
 * them in one group). */
static double sense_op_bytes(const long kdims[R5_DIMS], long n_maps, long *group_coils)
{
	long C = kdims[R5_DIM_COIL], plane = kdims[1] * kdims[2], volume = kdims[0] * plane;
	long group = R5_PROGRESS_CHUNK_VALUES / volume, n_groups = 1;
	if (group >= 1 && group < C)
		n_groups = (C + group - 1) / group;
	long coils = n_groups > 1 ? group : C, sizes = n_groups > 1 && C % group ? 2 : 1;
	double op = elements(volume * coils) + elements(plane) * sizes;
	if (n_groups > 1 && n_maps > 1)
		op += dims_bytes(kdims) * n_maps;
	if (group_coils)
		*group_coils = coils;
	return op;
}

static void sense_solve(struct ledger *l, const long fdims[R5_DIMS], int n_maps)
{
	long coil_images[R5_DIMS], image[R5_DIMS], plane = fdims[1] * fdims[2];
	dims_with(coil_images, fdims, R5_DIM_MAP, 1);
	dims_with(image, fdims, R5_DIM_COIL, 1);
	image[R5_DIM_MAP] = n_maps;
	double op = sense_op_bytes(fdims, n_maps, NULL);
	hold(l, op + 2 * elements(plane));
	drop(l, 2 * elements(plane));
	hold(l, 2 * dims_bytes(image)); /* rhs, x */
	fft_ramps(l, coil_images, R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z));
	hold(l, 3 * dims_bytes(image)); /* CG: r, p, A p */
	drop(l, 3 * dims_bytes(image));
	hold(l, dims_bytes(coil_images)); /* data residual */
	drop(l, dims_bytes(coil_images));
	if (n_maps > 1)
		rss(l, image);
	drop(l, 2 * dims_bytes(image) + op);
}

static void cs_slabs(struct ledger *l, const r5_recon_params *p, const long fdims[R5_DIMS]);

static void sense(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS], int cs)
{
	long images[R5_DIMS], fdims[R5_DIMS], acs[R5_DIMS], calib[3];
	dims_with(images, kdims, R5_DIM_COIL, 1);
	double out = dims_bytes(images) * (p->gfactor ? 2 : 1);
	hold(l, out);
	r5_dims_ones(fdims);
	for (int d = 0; d < 4; d++)
		fdims[d] = kdims[d];
	long cap = p->calib_size > 0 ? p->calib_size : 24;
	/* no region (the run fails there): the cap is the largest block it could be */
	if (r5_calib_region_find(work, calib) != R5_OK)
		calib[0] = calib[1] = calib[2] = cap;
	r5_dims_copy(acs, fdims);
	for (int d = 0; d < 3; d++) {
		long c = d == 0 ? fdims[0] : calib[d];
		c = c < fdims[d] ? c : fdims[d];
		acs[d] = c > cap ? cap : c;
	}
	r5_espirit_conf ec = r5_espirit_defaults;
	ec.kernel = p->sense.kernel_size;
	ec.n_maps = p->sense.n_maps;
	ec.calib = cap;
	long img[3] = {kdims[0], kdims[1], kdims[2]}, plane = kdims[1] * kdims[2], npix = img[0] * img[1] * img[2];
	double maps = 0;
	hold(l, dims_bytes(fdims)); /* the frame where the context computes */
	hold(l, dims_bytes(acs));
	espirit(l, &ec, acs, img, &maps);
	mask_upload(l, plane);
	fft_ramps(l, fdims, R5_FLAG(R5_DIM_X));
	if (cs && r5_cs_decoupled(p, fdims))
		cs_slabs(l, p, fdims);
	else
		sense_solve(l, fdims, p->sense.n_maps);
	if (p->gfactor) { /* r5_sense_gfactor: the maps and the g-factor on the host */
		hold(l, maps + elements(npix));
		drop(l, maps + elements(npix));
	}
	drop(l, maps + dims_bytes(acs) + dims_bytes(fdims) + elements(plane));
	to_recon_matrix(l, work, images);
	if (p->gfactor)
		to_recon_matrix(l, work, images);
	drop(l, out);
}

/* --- CS (pipeline/cs.c): SENSE's arrays plus the solver's, counted over the whole run (an upper
 * bound): FISTA holds 4 image vectors, the wavelet coefficients and the operator's scratch (2);
 * ADMM per term z and u on the term's range (finite differences: one image per image dim,
 * wavelets: one), the inner CG's 3 vectors and 2 more. A decoupled 3D frame (cs_slab.c) holds
 * them per slab of x positions instead of for the whole volume. --- */

/* Image vectors the solver holds for a problem with image_dims regularised dims. */
static long cs_vectors(const r5_recon_params *p, int image_dims)
{
	if (!strcmp(p->cs.reg, "l1"))
		return 7;
	return 2 * ((strstr(p->cs.reg, "tv") ? image_dims : 0) + (strstr(p->cs.reg, "l1") ? 1 : 0)) + 5;
}

/* r5_cs_slabs_solve on the host: per slab its k-space and maps gathered (views for one slab of the
 * whole readout), its operator (sense_op_bytes, on the slab), E^H y; pass 2 adds x, the
 * solver's vectors (2D regularisers), the residual's prediction and, with two map sets, the rss.
 * The last slab may be narrower (a second FFT shape); the widest is the peak. */
static void cs_slabs(struct ledger *l, const r5_recon_params *p, const long fdims[R5_DIMS])
{
	long nx = fdims[0], width = r5_cs_slab_width(p, R5_HOST, fdims), M = p->sense.n_maps, group_coils;
	long plane = fdims[1] * fdims[2], slab[R5_DIMS], image[R5_DIMS];
	dims_with(slab, fdims, 0, width);
	dims_with(image, slab, R5_DIM_COIL, 1);
	image[R5_DIM_MAP] = M;
	double op = sense_op_bytes(slab, M, &group_coils);
	double data = width < nx ? dims_bytes(slab) * (double)(1 + M) : 0;
	double vectors = dims_bytes(image) * (double)(2 + cs_vectors(p, 2));
	long widths[2] = {width, nx % width};
	for (int i = 0; i < 2; i++)
		if (widths[i] > 0) {
			long coil_images[R5_DIMS];
			dims_with(coil_images, slab, 0, widths[i]);
			coil_images[R5_DIM_COIL] = group_coils;
			fft_ramps(l, coil_images, R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z));
		}
	hold(l, data + op + 2 * elements(plane)); /* the operator's mask made from host copies */
	drop(l, 2 * elements(plane));
	hold(l, vectors);
	hold(l, dims_bytes(slab)); /* the residual's prediction */
	drop(l, dims_bytes(slab));
	if (M > 1) { /* the rss of the map sets and its |x|^2 */
		hold(l, dims_bytes(image) / (double)M + dims_bytes(image));
		drop(l, dims_bytes(image) / (double)M + dims_bytes(image));
	}
	drop(l, vectors + data + op);
}

static void cs(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS])
{
	long image[R5_DIMS];
	r5_dims_ones(image);
	int image_dims = 0;
	for (int d = 0; d < 3; d++) {
		image[d] = kdims[d];
		image_dims += kdims[d] > 1;
	}
	image[R5_DIM_MAP] = p->sense.n_maps;
	double extra = r5_cs_decoupled(p, kdims) ? 0 : dims_bytes(image) * (double)cs_vectors(p, image_dims);
	hold(l, extra);
	sense(l, work, p, kdims, 1);
	drop(l, extra);
}

/* --- GRAPPA (calib/grappa.c, pipeline/grappa.c) --- */

/* Sizes of a GRAPPA calibration (geom_make in calib/grappa.c): unknowns n, targets m, fits, kernel. */
struct grappa_size {
	long n, m, rows, kernel;
};

static void grappa_size(const long n[3], long C, const long calib[3], const int accel[2], int kernel_x,
			struct grappa_size *g)
{
	int n_accel = (accel[0] > 1) + (accel[1] > 1);
	long kx = kernel_x > 0 ? kernel_x : (n_accel > 1 ? 5 : 7);
	kx -= kx % 2 == 0;
	if (kx > n[0])
		kx = n[0] - (n[0] % 2 == 0);
	long src = n_accel > 1 && kx > 1 && 16 * kx * C > 800 ? 2 : 4, n_src = 1, fits = 1, width = 1;
	for (int d = 0; d < 3; d++) {
		long R = d == 0 ? 1 : accel[d - 1], j0, j1;
		if (R > 1) {
			j0 = -(src / 2 - 1);
			j1 = src / 2;
		} else {
			long h = d == 0 ? kx / 2 : (n[d] > 1 ? 1 : 0);
			j0 = -h;
			j1 = h;
		}
		long lo = R * j0 - (R - 1), hi = R * j1, half = labs(lo) > hi ? labs(lo) : hi;
		long a = calib[d] < n[d] ? calib[d] : n[d], span = R * (j1 - j0);
		n_src *= j1 - j0 + 1;
		fits *= a - span > 1 ? a - span : 1;
		width *= 2 * half + 1;
	}
	g->n = n_src * C;
	g->m = ((long)accel[0] * accel[1] - 1) * C;
	g->rows = fits < 6 * g->n ? fits : 6 * g->n;
	g->kernel = width * C * C;
}

static void grappa_calibrate(struct ledger *l, const struct grappa_size *g)
{
	double A = elements(g->rows * g->n), T = elements(g->rows * g->m);
	double AhA = elements(g->n * g->n), AhT = elements(g->n * g->m);
	hold(l, A + T);
	hold(l, A + 2 * AhA); /* A^H A: A copied, the product and its host copy */
	drop(l, A + AhA);
	hold(l, A + T + 2 * AhT); /* A^H T */
	drop(l, A + T + AhT);
	drop(l, A + T);
	double solve = doubles_c(g->n * g->n + g->n * g->m);
	hold(l, solve);
	drop(l, doubles_c(g->n * g->n) + AhA + AhT);
	hold(l, elements(g->kernel));
	drop(l, doubles_c(g->n * g->m));
}

/* One frame: coil images and scratch are the caller's; the kernel lives for the frame. */
static r5_status grappa_frame(struct ledger *l, const r5_scan *work, const r5_recon_params *p,
			      const long fdims[R5_DIMS])
{
	long n[3] = {fdims[0], fdims[1], fdims[2]}, C = fdims[R5_DIM_COIL], plane = n[1] * n[2], yz[2];
	long volume = n[0] * n[1] * n[2];
	unsigned long xyz = R5_FLAG(R5_DIM_X) | R5_FLAG(R5_DIM_Y) | R5_FLAG(R5_DIM_Z);
	int accel[2] = {1, 1}, offset[2];
	if (r5_calib_region_find_mask(work->sampled, n[1], n[2], yz) != R5_OK ||
	    r5_grappa_sampling(work->sampled, n[1], n[2], yz, work->header.accel, accel, offset) != R5_OK)
		return R5_OK; /* the run fails before it allocates more */
	for (int d = 0; d < 2; d++)
		if (p->calib_size > 0 && yz[d] > p->calib_size)
			yz[d] = p->calib_size;
	fft_ramps(l, fdims, xyz);
	if (accel[0] == 1 && accel[1] == 1)
		return R5_OK;
	long calib[3] = {n[0], yz[0], yz[1]};
	int kernel_x = p->grappa.kernel_size;
	struct grappa_size g;
	grappa_size(n, C, calib, accel, kernel_x, &g);
	grappa_calibrate(l, &g);
	mask_upload(l, plane);
	drop(l, elements(plane));
	/* g-factor: combination weights (coil images) and their rss; apply (r5_grappa_apply, one
	 * group of R5_PROGRESS_CHUNK_VALUES / V input coils at a time): the group's kernel rows and
	 * mixing rows, q (coil images) and two rss images with the g-factor */
	double weights = p->gfactor ? dims_bytes(fdims) : 0;
	long group = R5_PROGRESS_CHUNK_VALUES / volume;
	group = group < 1 ? 1 : group > C ? C : group;
	double apply = elements(g.kernel / C / C * group) + elements(volume * group) +
		       (p->gfactor ? dims_bytes(fdims) + 2 * elements(volume) : 0);
	hold(l, weights);
	if (p->gfactor) { /* weights / rss(weights) */
		hold(l, elements(volume));
		rss(l, fdims);
		drop(l, elements(volume));
	}
	hold(l, apply);
	if (p->gfactor) /* rss of q and of the weights */
		rss(l, fdims);
	drop(l, apply + weights + elements(g.kernel));
	mask_upload(l, plane); /* fill_and_restore's mask of the kept lines */
	drop(l, elements(plane));
	return R5_OK;
}

static r5_status grappa(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS])
{
	long fdims[R5_DIMS], combined[R5_DIMS];
	r5_dims_ones(fdims);
	for (int d = 0; d < 4; d++)
		fdims[d] = kdims[d];
	dims_with(combined, kdims, R5_DIM_COIL, 1);
	/* k-space copied where the context computes, coil images, scratch, combined, g-factor */
	double run = dims_bytes(kdims) + 2 * dims_bytes(fdims) + dims_bytes(combined) * (p->gfactor ? 2 : 1);
	hold(l, run);
	R5_TRY(grappa_frame(l, work, p, fdims));
	combine(l, p->grappa.combine, fdims);
	to_recon_matrix(l, work, combined);
	if (p->gfactor)
		to_recon_matrix(l, work, combined);
	drop(l, run);
	return R5_OK;
}

/* --- grid_pipeline.c --- */

static void grid(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS])
{
	long image[R5_DIMS], out[R5_DIMS];
	r5_pipeline_nc_image_dims(&work->header, kdims[R5_DIM_COIL], image);
	long spokes = kdims[2], step = spokes, frames = 1;
	if (r5_pipeline_grid_frames(p, kdims[2], &spokes, &step, &frames) != R5_OK)
		r5_clear_error(); /* refused before (r5_recon_memory_estimate) */
	long n = kdims[1] * spokes;
	dims_with(out, image, R5_DIM_COIL, 1);
	out[R5_DIM_TIME] = frames;
	double own = (double)n * 16.0 + elements(n * kdims[R5_DIM_COIL]) + dims_bytes(out) +
		     r5_grid_plan_bytes(image, n, NULL);
	int adaptive = !strcmp(p->grid.combine, "adaptive");
	if (adaptive)
		own += dims_bytes(image);
	hold(l, own);
	if (strcmp(p->grid.dcf, "ramp") && strcmp(p->grid.dcf, "none")) { /* Pipe-Menon: a one-coil plan, 3 arrays */
		long one[R5_DIMS];
		dims_with(one, image, R5_DIM_COIL, 1);
		double pm = r5_grid_plan_bytes(one, n, NULL) + dims_bytes(one) + elements(2 * n) + (double)n * 12.0;
		hold(l, pm);
		drop(l, pm);
	}
	if (adaptive) {
		hold(l, walsh_bytes(image));
		drop(l, walsh_bytes(image));
	}
	to_recon_matrix(l, work, out);
	drop(l, own);
}

/* non-Cartesian sense and cs (nc_sense_pipeline.c, nc_cs_pipeline.c): their own accounts, then
 * the recon-matrix step */
static void nc_sense(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS],
		     int cs)
{
	long image[R5_DIMS], out[R5_DIMS];
	r5_pipeline_nc_image_dims(&work->header, kdims[R5_DIM_COIL], image);
	long spokes = kdims[2], step = spokes, frames = 1;
	if (r5_pipeline_grid_frames(p, kdims[2], &spokes, &step, &frames) != R5_OK)
		r5_clear_error(); /* refused before (r5_recon_memory_estimate) */
	double own = cs ? r5_pipeline_nc_cs_bytes(image, kdims[1], kdims[2], spokes, frames)
			: r5_pipeline_nc_sense_bytes(image, kdims[1], kdims[2], spokes, frames);
	hold(l, own);
	dims_with(out, image, R5_DIM_COIL, 1);
	out[R5_DIM_TIME] = frames;
	to_recon_matrix(l, work, out);
	drop(l, own);
}

/* --- grasp_pipeline.c --- */

/* r5_grasp_solve's arrays: per frame a one-coil Toeplitz plan (the PSF's FFT and one 2N grid,
 * [2N0, 2N1] each, plus its points), one coil-batched plan for A^H W y, the samples twice (copy
 * and weighted frame order), coordinates twice, weights twice; ADMM's 5 domain arrays (two
 * right-hand sides for CG's restart from its residual), CG's 3, D_t's range twice (the domain's
 * size), x0 and the series; maps and coil images: 12 series an upper bound. Model l+s
 * holds fewer series (M, L, S, L_prev, work, normal, x0, the output: 8 of the 12). */
static void grasp(struct ledger *l, const r5_scan *work, const r5_recon_params *p, const long kdims[R5_DIMS])
{
	long image[R5_DIMS], out[R5_DIMS];
	r5_pipeline_nc_image_dims(&work->header, kdims[R5_DIM_COIL], image);
	long spokes = p->grid.frame_spokes > 0 ? p->grid.frame_spokes : 21;
	spokes = spokes < kdims[2] ? spokes : kdims[2];
	long frames = spokes > 0 ? kdims[2] / spokes : 1, n_all = kdims[1] * kdims[2], np = kdims[1] * spokes;
	dims_with(out, image, R5_DIM_COIL, 1);
	out[R5_DIM_TIME] = frames;
	double plane = (double)(image[0] * image[1]), toeplitz = (double)frames * (2 * 4 * plane * 8.0 + (double)np * 24.0);
	double own = 2 * elements(n_all * kdims[R5_DIM_COIL]) + (double)n_all * (24.0 + 8.0) + 12 * dims_bytes(out) +
		     2 * dims_bytes(image) + toeplitz + r5_grid_plan_bytes(image, np, NULL);
	hold(l, own);
	to_recon_matrix(l, work, out);
	drop(l, own);
}

/* --- r5_recon_run (pipeline.c) --- */

static const char *resolve_pipeline(const r5_scan *scan, const r5_recon_params *p)
{
	return strcmp(p->pipeline, "auto") ? p->pipeline : r5_pipeline_auto_choice_for(scan, p);
}

static double scan_bytes(const r5_scan *scan)
{
	double masks = scan->sampled ? 3.0 * (double)r5_dims_size(scan->mask_dims) : 0;
	return dims_bytes(scan->kspace->dims) + (scan->traj ? dims_bytes(scan->traj->dims) : 0) + (scan->noise ? dims_bytes(scan->noise->dims) : 0) + masks +
	       (double)scan->n_slices * sizeof *scan->geometry;
}

r5_status r5_recon_memory_estimate(const r5_scan *scan, const r5_recon_params *params, double *bytes)
{
	*bytes = 0;
	const r5_recon_params *p = params ? params : &r5_recon_defaults;
	if (!scan || !scan->kspace)
		return r5_set_error(R5_EINVAL, "memory estimate: no k-space");
	const char *name = resolve_pipeline(scan, p);
	R5_TRY(r5_pipeline_check_takes(name, scan));
	long frame_spokes, frame_step, n_frames;
	if (scan->traj) /* frames that do not fit the scan: refused before the job is queued */
		R5_TRY(r5_pipeline_grid_frames(p, scan->kspace->dims[2], &frame_spokes, &frame_step, &n_frames));
	struct ledger l;
	memset(&l, 0, sizeof l);
	const long *k = scan->kspace->dims;
	long longest = k[0] > k[1] ? k[0] : k[1];
	longest = longest > k[2] ? longest : k[2];
	double fftw_buffers = elements(R5_EST_FFTW_ROWS * (longest + R5_EST_FFTW_SKEW)) * r5_max_threads();
	hold(&l, R5_EST_RUNTIME_BYTES + fftw_buffers + scan_bytes(scan));
	/* r5_pipeline_drop_empty: outer indices without data dropped into a compacted copy, held to
	 * the end (the pipeline's own arrays are estimated on the whole scan: an upper bound) */
	long frames = r5_dims_size(scan->kspace->dims) / (k[0] * k[1] * k[2] * k[3]);
	long kept = scan->sampled ? r5_pipeline_kept_frames(scan) : frames;
	double compacted = kept >= 0 && kept < frames ? scan_bytes(scan) * (double)kept / (double)frames : 0;
	hold(&l, compacted);
	struct work_scan w;
	R5_TRY(prepare(&l, scan, p, &w));
	/* the pipeline sees the work scan: k-space (and noise) after r5_coils_prepare, the scan's
	 * header, masks and geometry; what r5_coils_release frees goes after the pipeline's peak */
	if (!strcmp(name, "grid"))
		grid(&l, scan, p, w.kdims);
	else if (!strcmp(name, "sense") && scan->traj)
		nc_sense(&l, scan, p, w.kdims, 0);
	else if (!strcmp(name, "cs") && scan->traj)
		nc_sense(&l, scan, p, w.kdims, 1);
	else if (!strcmp(name, "grasp"))
		grasp(&l, scan, p, w.kdims);
	else if (!strcmp(name, "cartesian"))
		cartesian(&l, scan, p, w.kdims);
	else if (!strcmp(name, "sense"))
		sense(&l, scan, p, w.kdims, 0);
	else if (!strcmp(name, "cs"))
		cs(&l, scan, p, w.kdims);
	else
		R5_TRY(grappa(&l, scan, p, w.kdims));
	drop(&l, w.owned); /* r5_coils_release */
	drop(&l, compacted);
	*bytes = l.peak;
	return R5_OK;
}
