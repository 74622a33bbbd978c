/* The calibration of a one-frame sense/cs run from the centre of k-space alone (calibration.h):
 * the copy of its input, the chain (prewhitening, coil compression, ESPIRiT on the block) and
 * the check that a calibration computed ahead is the one the run would make. */
#include "calibration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "coil_prep.h"

struct r5_calibration {
	/* input, copied from the scan: kspace = the raw block [nx, by, bz, C] (host), noise = the
	 * noise scan when prewhitening applies (host), and the scalars the noise bandwidth needs */
	r5_scan input;
	long kdims[4];         /* the scan's nx, ny, nz, channels */
	long acs[3];           /* ESPIRiT's ACS: nx and the calibration region capped at W */
	r5_recon_params params;
	/* result */
	r5_array *maps;
	double seconds;
};

long r5_calibration_width(const r5_recon_params *p) { return p->calib_size > 0 ? p->calib_size : 24; }

void r5_calibration_espirit_conf(const r5_recon_params *p, r5_espirit_conf *ec)
{
	*ec = r5_espirit_defaults;
	ec->kernel = p->sense.kernel_size;
	ec->threshold = p->sense.espirit_threshold;
	ec->crop = p->sense.espirit_crop;
	ec->n_maps = p->sense.n_maps;
	ec->calib = r5_calibration_width(p);
}

int r5_calibration_applies(const r5_scan *scan, const char *pipeline)
{
	if (!scan || !scan->kspace || !scan->sampled || !pipeline || (strcmp(pipeline, "sense") && strcmp(pipeline, "cs")))
		return 0;
	if (scan->header.trajectory[0] && strcmp(scan->header.trajectory, "cartesian"))
		return 0;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++)
		if (scan->kspace->dims[d] != 1)
			return 0;
	return 1;
}

/* The block's ky-kz window: widths by, bz and first rows y0, z0 (r5_zresize_centered's centring:
 * row n/2 - w/2 of the grid is the block's row 0). The window covers both coil compression's
 * covariance block and ESPIRiT's capped ACS. */
static void block_window(const r5_scan *scan, const r5_recon_params *p, long width[2], long first[2])
{
	r5_cc_conf cc = r5_cc_defaults;
	if (p->calib_size > 0)
		cc.calib[0] = cc.calib[1] = p->calib_size;
	long cap = r5_calibration_width(p);
	for (int d = 0; d < 2; d++) {
		long n = scan->kspace->dims[R5_DIM_Y + d], w = cc.calib[d] > cap ? cc.calib[d] : cap;
		width[d] = w > 0 && w < n ? w : n;
		first[d] = n / 2 - width[d] / 2;
	}
}

int r5_calibration_block_complete(const r5_scan *scan, const r5_recon_params *p)
{
	if (!scan || !scan->kspace || !scan->sampled)
		return 0;
	long width[2], first[2], ny = scan->mask_dims[R5_DIM_Y];
	block_window(scan, p, width, first);
	for (long z = first[1]; z < first[1] + width[1]; z++)
		for (long y = first[0]; y < first[0] + width[0]; y++)
			if (!scan->sampled[y + ny * z])
				return 0;
	return 1;
}

/* The raw block of the scan's first frame into a new host array (plain copies of readouts). */
static r5_status copy_block(const r5_scan *scan, const r5_recon_params *p, r5_array **out)
{
	const r5_array *k = scan->kspace;
	long width[2], first[2], dims[R5_DIMS];
	block_window(scan, p, width, first);
	r5_dims_ones(dims);
	dims[R5_DIM_X] = k->dims[R5_DIM_X];
	dims[R5_DIM_Y] = width[0];
	dims[R5_DIM_Z] = width[1];
	dims[R5_DIM_COIL] = k->dims[R5_DIM_COIL];
	R5_TRY(r5_array_alloc_host(dims, out));
	float complex *dst = (*out)->data;
	for (long c = 0; c < dims[R5_DIM_COIL]; c++)
		for (long z = 0; z < dims[R5_DIM_Z]; z++)
			for (long y = 0; y < dims[R5_DIM_Y]; y++) {
				const float complex *src = k->data + (y + first[0]) * k->strides[R5_DIM_Y] +
							   (z + first[1]) * k->strides[R5_DIM_Z] + c * k->strides[R5_DIM_COIL];
				memcpy(dst, src, sizeof *dst * (size_t)dims[R5_DIM_X]);
				dst += dims[R5_DIM_X];
			}
	return R5_OK;
}

/* ESPIRiT's ACS: the calibration region found in the mask, capped at W (as sense.c's frame_acs). */
static r5_status acs_dims(const r5_scan *scan, const r5_recon_params *p, long acs[3])
{
	long calib[3], cap = r5_calibration_width(p);
	R5_TRY(r5_calib_region_find(scan, calib));
	acs[0] = scan->kspace->dims[R5_DIM_X];
	for (int d = 1; d < 3; d++)
		acs[d] = cap > 0 && calib[d] > cap ? cap : calib[d];
	return R5_OK;
}

r5_status r5_calibration_input_copy(const r5_scan *scan, const r5_recon_params *p, r5_calibration **out)
{
	*out = NULL;
	if (!scan || !scan->kspace || !scan->sampled)
		return r5_set_error(R5_EINVAL, "calibration: scan has no k-space or sampling mask");
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++)
		if (scan->kspace->dims[d] != 1)
			return r5_set_error(R5_EINVAL, "calibration: the scan has more than one frame (dim %d is %ld)", d,
					    scan->kspace->dims[d]);
	r5_calibration *cal = calloc(1, sizeof *cal);
	if (!cal)
		return r5_set_error(R5_ENOMEM, "calibration");
	cal->params = *p;
	for (int d = 0; d < 4; d++)
		cal->kdims[d] = scan->kspace->dims[d];
	cal->input.noise_dwell_us = scan->noise_dwell_us;
	cal->input.acq_dwell_us = scan->acq_dwell_us;
	cal->input.readout_oversampling = scan->readout_oversampling;
	cal->input.header.relative_noise_bw = scan->header.relative_noise_bw;
	cal->input.header.n_channels = (int)scan->kspace->dims[R5_DIM_COIL];
	r5_status s = acs_dims(scan, p, cal->acs);
	if (s == R5_OK)
		s = copy_block(scan, p, &cal->input.kspace);
	if (s == R5_OK && p->prewhiten && scan->noise) {
		s = r5_array_alloc_host(scan->noise->dims, &cal->input.noise);
		if (s == R5_OK)
			memcpy(cal->input.noise->data, scan->noise->data, sizeof(float complex) * (size_t)r5_array_size(scan->noise));
	}
	if (s != R5_OK) {
		r5_calibration_free(cal);
		return r5_error_context(s, "calibration");
	}
	*out = cal;
	return R5_OK;
}

r5_status r5_calibration_cc_conf(const r5_recon_params *p, r5_cc_conf *cc, int *compress)
{
	*cc = r5_cc_defaults;
	cc->n_virtual = p->n_virtual_coils;
	cc->energy = p->n_virtual_coils > 0 ? 0.0f : p->coil_energy;
	if (p->calib_size > 0)
		cc->calib[0] = cc->calib[1] = p->calib_size;
	*compress = cc->n_virtual > 0 || cc->energy > 0;
	return r5_cc_mode_parse(p->cc_mode, &cc->mode);
}

static double seconds_now(r5_ctx *ctx)
{
	r5_ctx_sync(ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* *block <- the prewhitened block (as prewhiten_work mixes the whole k-space). */
static r5_status prewhiten_block(r5_ctx *ctx, const r5_calibration *cal, const r5_progress *progress, r5_array **block)
{
	long coils = cal->input.kspace->dims[R5_DIM_COIL];
	size_t cc = (size_t)(coils * coils);
	double complex *w = malloc(sizeof *w * cc * 2);
	if (!w)
		return r5_set_error(R5_ENOMEM, "calibration: prewhitening (%ld channels)", coils);
	double complex *mix = w + cc;
	r5_status s = r5_noise_whitening_matrices(ctx, &cal->input, w, NULL, progress);
	for (long i = 0; s == R5_OK && i < coils; i++)
		for (long j = 0; j < coils; j++)
			mix[j + coils * i] = w[i + coils * j];
	if (s == R5_OK)
		s = r5_coil_mix(ctx, cal->input.kspace, mix, (int)coils, progress, "prewhitening", block);
	free(w);
	return s;
}

/* The chain up to the ACS block (work) and ESPIRiT. */
static r5_status chain(r5_ctx *ctx, r5_calibration *cal, const r5_progress *progress, int maps_on_host,
		       r5_array **maps)
{
	const r5_recon_params *p = &cal->params;
	r5_array *white = NULL, *compressed = NULL, *source = NULL, *acs = NULL;
	const r5_array *current = cal->input.kspace;
	r5_progress_part part;
	r5_cc_conf cc;
	int compress = 0;
	r5_status s = r5_calibration_cc_conf(p, &cc, &compress);
	if (s == R5_OK && p->prewhiten && cal->input.noise) {
		s = prewhiten_block(ctx, cal, r5_progress_part_init(&part, progress, 0, 0.02, "prewhitening"), &white);
		current = white;
	}
	if (s == R5_OK && compress) {
		int n = 0;
		cc.progress = r5_progress_part_init(&part, progress, 0.02, 0.05, "coil compression");
		s = r5_coil_compress_to(ctx, current, &cc, &compressed, &n, NULL);
		current = compressed;
	}
	if (s == R5_OK)
		s = r5_array_to_work(ctx, current, &source);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = cal->acs[d];
	dims[R5_DIM_COIL] = s == R5_OK ? source->dims[R5_DIM_COIL] : 1;
	r5_array_free(white);
	r5_array_free(compressed);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, dims, &acs);
	if (s == R5_OK)
		s = r5_zresize_centered(ctx, acs, source);
	r5_array_free(source);
	r5_espirit_conf ec;
	r5_calibration_espirit_conf(p, &ec);
	ec.progress = r5_progress_part_init(&part, progress, 0.05, 1, NULL);
	ec.host_maps = maps_on_host; /* made there slab by slab: never the whole set in device memory */
	const long img[3] = {cal->kdims[0], cal->kdims[1], cal->kdims[2]};
	if (s == R5_OK)
		s = r5_espirit_maps(ctx, &ec, acs, img, maps, NULL);
	r5_array_free(acs);
	return s;
}

r5_status r5_calibration_compute(r5_ctx *ctx, r5_calibration *cal, const r5_progress *progress, int maps_on_host)
{
	if (!cal || !cal->input.kspace)
		return r5_set_error(R5_EINVAL, "calibration: no input (copied block) to compute from");
	r5_array_free(cal->maps);
	cal->maps = NULL;
	double t0 = seconds_now(ctx);
	r5_array *maps = NULL;
	r5_status s = chain(ctx, cal, progress, maps_on_host, &maps);
	if (s == R5_OK && maps_on_host && maps->where != R5_HOST) {
		r5_array *host = NULL;
		s = r5_array_to_host(ctx, maps, &host);
		r5_array_free(maps);
		maps = host;
	}
	if (s != R5_OK) {
		r5_array_free(maps);
		return r5_error_context(s, "calibration");
	}
	cal->maps = maps;
	cal->seconds = seconds_now(ctx) - t0;
	return R5_OK;
}

/* The parameters the chain reads. */
static int same_chain_params(const r5_recon_params *a, const r5_recon_params *b)
{
	return a->prewhiten == b->prewhiten && a->n_virtual_coils == b->n_virtual_coils &&
	       a->coil_energy == b->coil_energy && a->calib_size == b->calib_size && !strcmp(a->cc_mode, b->cc_mode) &&
	       a->sense.n_maps == b->sense.n_maps && a->sense.kernel_size == b->sense.kernel_size &&
	       a->sense.espirit_threshold == b->sense.espirit_threshold && a->sense.espirit_crop == b->sense.espirit_crop;
}

static int arrays_equal(const r5_array *a, const r5_array *b)
{
	if (!a || !b)
		return a == b;
	return r5_dims_equal(a->dims, b->dims) &&
	       !memcmp(a->data, b->data, sizeof(float complex) * (size_t)r5_array_size(a));
}

#define WHY(...) (snprintf(why, why_size, __VA_ARGS__), 0)

int r5_calibration_matches(const r5_calibration *cal, const r5_scan *scan, const r5_recon_params *p,
			   int input_shift, char *why, size_t why_size)
{
	if (!cal || !cal->maps)
		return WHY("nothing was computed");
	if (!cal->input.kspace)
		return WHY("its input was not kept");
	if (input_shift)
		return WHY("the data were scaled by 2^-%d for single precision after it was made", input_shift);
	for (int d = 0; d < 4; d++)
		if (scan->kspace->dims[d] != cal->kdims[d])
			return WHY("k-space is %ldx%ldx%ld with %ld channels, it was made for %ldx%ldx%ld with %ld",
				   scan->kspace->dims[0], scan->kspace->dims[1], scan->kspace->dims[2],
				   scan->kspace->dims[3], cal->kdims[0], cal->kdims[1], cal->kdims[2], cal->kdims[3]);
	if (!same_chain_params(p, &cal->params))
		return WHY("the parameters differ");
	long acs[3] = {0, 0, 0};
	if (acs_dims(scan, p, acs) != R5_OK || acs[1] != cal->acs[1] || acs[2] != cal->acs[2])
		return WHY("the calibration region grew from %ldx%ld to %ldx%ld", cal->acs[1], cal->acs[2], acs[1], acs[2]);
	const r5_array *noise = p->prewhiten ? scan->noise : NULL;
	if (!arrays_equal(noise, cal->input.noise))
		return WHY("the noise scan changed after it was made");
	r5_array *block = NULL;
	if (copy_block(scan, p, &block) != R5_OK)
		return WHY("no memory to compare the calibration block");
	int same = arrays_equal(block, cal->input.kspace);
	r5_array_free(block);
	if (!same)
		return WHY("the calibration block's samples changed after it was copied");
	return 1;
}

r5_status r5_calibration_maps_at(r5_ctx *ctx, const r5_calibration *cal, r5_residency where, r5_array **maps)
{
	*maps = NULL;
	if (!cal || !cal->maps)
		return r5_set_error(R5_EINVAL, "calibration: no maps computed");
	if (cal->maps->where == where)
		return r5_array_view(cal->maps->where, cal->maps->ctx, cal->maps->dims, cal->maps->data, maps);
	return where == R5_HOST ? r5_array_to_host(ctx, cal->maps, maps) : r5_array_to_work(ctx, cal->maps, maps);
}

r5_status r5_calibration_maps(r5_ctx *ctx, const r5_calibration *cal, r5_array **maps)
{
	return r5_calibration_maps_at(ctx, cal, r5_ctx_residency(ctx), maps);
}

double r5_calibration_seconds(const r5_calibration *cal) { return cal ? cal->seconds : 0.0; }

static long host_bytes(const r5_array *a)
{
	return a && a->where == R5_HOST ? (long)(r5_array_size(a) * (long)sizeof(float complex)) : 0;
}

long r5_calibration_bytes(const r5_calibration *cal)
{
	if (!cal)
		return 0;
	return (long)sizeof *cal + host_bytes(cal->input.kspace) + host_bytes(cal->input.noise) + host_bytes(cal->maps);
}

void r5_calibration_drop_input(r5_calibration *cal)
{
	if (!cal)
		return;
	r5_array_free(cal->input.kspace);
	r5_array_free(cal->input.noise);
	cal->input.kspace = cal->input.noise = NULL;
}

void r5_calibration_free(r5_calibration *cal)
{
	if (!cal)
		return;
	r5_calibration_drop_input(cal);
	r5_array_free(cal->maps);
	free(cal);
}
