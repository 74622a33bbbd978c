/* The scan builder (scan.h): sorts ISMRMRD acquisitions into a k-space grid as they arrive.
 *
 * Decisions, so that every caller (service stream, HDF5 file) gets the same grid:
 * - Readout oversampling. ISMRMRD convention: encodedSpace.matrixSize.x counts the acquired
 *   readout samples including oversampling (512) and reconSpace x the image (256), with the
 *   encoded FOV x twice the recon FOV. When encoded x == 2 * recon x (and the FOVs, if given,
 *   agree to 1%) the readout is taken as 2x oversampled. Also, when the acquisitions carry
 *   2 * encoded x samples (after discard_pre/post), they are taken as oversampled relative to
 *   the header. Either way each line is inverse-FFT'd along the readout, the central half kept
 *   and FFT'd back (centred unitary FFTs on a CPU r5_ctx, scaled by 1/sqrt(2) so that sample
 *   amplitudes match a non-oversampled acquisition): k-space x = encoded x / 2 (first case) or
 *   encoded x (second), readout_oversampling = 2, acq_dwell_us = 2 * sample_time_us.
 *   The pipelines' grid FOV is enc_fov * kspace_x / enc_x, which is the recon FOV either way.
 * - Asymmetric echo: fewer samples than the readout length are placed so that center_sample
 *   lands at the readout centre; the rest stays 0.
 * - Placement: y = k1 + (ny/2 - k1.center), z likewise for k2 (centre = n/2 when the limit is
 *   absent); contrast -> dim 5, set -> dim 6, repetition -> 10, phase -> 11, slice -> 13,
 *   average -> 14. Averages are kept apart in dim 14 (the pipelines average the complex images,
 *   r5_pipeline_to_recon_matrix), so nothing is summed here. Segment is not a dimension.
 * - Sizes of the outer dims come from encodingLimits (maximum + 1); absent limits mean 1.
 * - A position that comes twice keeps the later line, except that a calibration-only line never
 *   replaces an imaging line.
 * - Reverse lines are flipped (sample order reversed) before anything else, as Gadgetron does.
 * - A line with a 1D readout trajectory (ramp-sampled EPI) is regridded onto the encoded x grid
 *   first (readout_grid.h: one matrix per distinct position pattern, kept in the builder), then
 *   treated as a line of encoded x samples; its reverse flag and center_sample are not used.
 * - Noise scans go to scan->noise [samples, coils] (raw samples, no oversampling removal).
 *   Navigator, phase-correction, feedback, dummy and phase-stabilisation acquisitions are
 *   counted and skipped.
 * - k-space is allocated at the first imaging acquisition (the channel count and readout length
 *   may come from the data); its size is checked against the budget before allocating, at
 *   create time already when the header says enough. */
#include "scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/fft.h"
#include "../core/radial_math.h"
#include "../core/log.h"
#include "readout_grid.h"
#include "scan_internal.h"

struct r5_scan_builder {
	r5_scan *scan;       /* header inside; kspace and masks once allocated */
	long max_bytes;      /* k-space budget */
	long dims[R5_DIMS];  /* k-space dims; dims[coil] 0 until known */
	long readout_acq;    /* readout length in the acquisitions incl. oversampling; 0 until known */
	int oversampling;    /* 1 or 2 (decided with readout_acq) */
	int header_os;       /* the header alone says 2x oversampled */
	long n_added, n_placed, n_imaging, n_skipped;
	long n_lines; /* distinct (ky, kz, frame) positions filled */
	long mask_strides[R5_DIMS];
	/* noise: chunks as they came (channel-major) */
	float complex *noise;
	long noise_len, noise_cap, noise_samples;
	long *noise_chunks;
	long n_noise_chunks, noise_chunks_cap;
	int noise_coils;
	/* oversampling removal */
	r5_ctx *ctx;
	r5_array *line_full, *line_half;
	/* non-Cartesian (scan_noncart.c): decided at the first imaging acquisition */
	int header_nc;           /* the header's trajectory is neither cartesian nor epi */
	int nc;                  /* -1 undecided, 0 Cartesian, 1 spokes */
	int traj_dims;           /* 2 or 3, the first spoke's */
	long spoke_read, spoke_coils;
	long n_spokes, spokes_cap;    /* spokes that came (released ones included); buffer slots */
	long spoke_base;              /* spokes released (r5_scan_builder_release_spokes): slot 0 holds
				       * spoke spoke_base, the buffers spokes spoke_base .. n_spokes - 1 */
	float complex *spoke_samples; /* [slot][coil][read], as the acquisitions carry them */
	float *spoke_traj;            /* [slot][read][3], cycles per FOV */
	/* trajectory from the header (scan.h): spoke s at angle (s mod period) psi (period 0: s psi) */
	int traj_from_header;
	double header_psi;
	long header_period;
	float *header_coords; /* one spoke: 3 kept + 2 number_of_samples floats */
	long header_coords_len;
	/* lines with a 1D readout trajectory (scan.h): regridded onto the encoded x grid */
	r5_readout_grid *regrid;
	double *regrid_k; /* one line's kept positions */
	long regrid_k_cap;
};

static int flag_set(uint64_t flags, int bit)
{
	return (int)((flags >> (bit - 1)) & 1u);
}

static long limit_size(const r5_limit *l)
{
	return l->present ? (long)l->max + 1 : 1;
}

r5_status r5_scan_check_budget(const long dims[R5_DIMS], long max_bytes, const char *what)
{
	long budget = max_bytes > 0 ? max_bytes : R5_ARRAY_MAX_BYTES;
	double bytes = (double)sizeof(float complex), other = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		bytes *= (double)(dims[d] > 0 ? dims[d] : 1);
		if (d > 3)
			other *= (double)dims[d];
	}
	if (bytes <= (double)budget)
		return R5_OK;
	char extra[64] = "";
	if (other > 1)
		snprintf(extra, sizeof extra, " (x %.0f contrasts/slices/repetitions/...)", other);
	/* GiB for budgets of 1 GiB and more, MiB below (a 64 MiB budget is not "0.1 GiB") */
	double unit = budget >= (1L << 30) ? 1024.0 * 1024 * 1024 : 1024.0 * 1024;
	const char *name = budget >= (1L << 30) ? "GiB" : "MiB";
	return r5_set_error(R5_ENOMEM, "%s: matrix %ldx%ldx%ld with %ld channels%s needs %.1f %s, memory budget is %.1f %s",
			    what, dims[0], dims[1], dims[2], dims[3], extra, bytes / unit, name, (double)budget / unit, name);
}

/* Dims the header implies; x and coil may still be 0 (from the data). */
static r5_status header_dims(r5_scan_builder *b)
{
	const r5_header *h = &b->scan->header;
	long *dims = b->dims;
	r5_dims_ones(dims);
	long ex = h->enc_matrix[0], rx = h->recon_matrix[0];
	int fov_agree = h->enc_fov_mm[0] <= 0 || h->recon_fov_mm[0] <= 0 ||
			fabsf(h->enc_fov_mm[0] - 2 * h->recon_fov_mm[0]) <= 0.01f * h->enc_fov_mm[0];
	b->header_os = ex > 0 && rx > 0 && ex == 2 * rx && fov_agree;
	dims[R5_DIM_X] = b->header_os ? ex / 2 : ex;
	dims[R5_DIM_Y] = h->enc_matrix[1] > 0 ? h->enc_matrix[1] : h->k1.present ? limit_size(&h->k1) : 0;
	if (dims[R5_DIM_Y] == 0)
		return r5_set_error(R5_EINVAL, "ISMRMRD header: encodedSpace/matrixSize/y and "
						"encodingLimits/kspace_encoding_step_1 are both absent: k-space size unknown");
	dims[R5_DIM_Z] = h->enc_matrix[2] > 0 ? h->enc_matrix[2] : limit_size(&h->k2);
	dims[R5_DIM_COIL] = h->n_channels;
	dims[R5_DIM_TE] = limit_size(&h->contrast);
	dims[R5_DIM_COEFF] = limit_size(&h->set);
	dims[R5_DIM_TIME] = limit_size(&h->repetition);
	dims[R5_DIM_TIME2] = limit_size(&h->phase);
	dims[R5_DIM_SLICE] = limit_size(&h->slice);
	dims[R5_DIM_AVG] = limit_size(&h->average);
	return R5_OK;
}

r5_status r5_scan_builder_create(const char *xml, size_t xml_length, const r5_scan_limits *limits,
				 r5_scan_builder **out)
{
	*out = NULL;
	r5_scan_builder *b = calloc(1, sizeof *b);
	if (b)
		b->scan = calloc(1, sizeof *b->scan);
	if (!b || !b->scan) {
		free(b);
		return r5_set_error(R5_ENOMEM, "scan builder");
	}
	b->max_bytes = limits && limits->max_kspace_bytes > 0 ? limits->max_kspace_bytes : R5_ARRAY_MAX_BYTES;
	size_t max_header = limits && limits->max_header_bytes > 0 ? (size_t)limits->max_header_bytes : 0;
	r5_status s = r5_header_parse_limited(xml, xml_length, max_header, &b->scan->header);
	b->nc = -1;
	if (s == R5_OK) {
		const char *t = b->scan->header.trajectory;
		b->header_nc = t[0] && strcmp(t, "cartesian") && strcmp(t, "epi");
		s = header_dims(b);
	}
	if (s == R5_OK && !b->header_nc) {
		/* early check with what the header says (unknown sizes count as 1); a non-Cartesian
		 * scan's size follows its spokes (r5_scan_nc_add) */
		s = r5_scan_check_budget(b->dims, b->max_bytes, "k-space");
	}
	if (s != R5_OK) {
		r5_scan_builder_destroy(b);
		return s;
	}
	*out = b;
	return R5_OK;
}

const r5_header *r5_scan_builder_header(const r5_scan_builder *b) { return &b->scan->header; }

long r5_scan_builder_count(const r5_scan_builder *b)
{
	return b ? b->n_added : 0;
}

void r5_scan_builder_destroy(r5_scan_builder *b)
{
	if (!b)
		return;
	r5_scan_free(b->scan);
	free(b->noise);
	free(b->noise_chunks);
	r5_array_free(b->line_full);
	r5_array_free(b->line_half);
	r5_ctx_destroy(b->ctx);
	free(b->spoke_samples);
	free(b->spoke_traj);
	free(b->header_coords);
	r5_readout_grid_destroy(b->regrid);
	free(b->regrid_k);
	free(b);
}

#define ACQ_FMT "acquisition %ld (scan_counter %u)"

/* First imaging acquisition: readout length, oversampling, channels; allocate k-space. */
static r5_status allocate_kspace(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, long samples)
{
	const r5_header *h = &b->scan->header;
	long ex = h->enc_matrix[0];
	if (b->header_os) {
		b->readout_acq = ex;
		b->oversampling = 2;
	} else if (ex > 0) {
		b->oversampling = samples == 2 * ex ? 2 : 1;
		b->readout_acq = b->oversampling * ex;
	} else {
		b->oversampling = h->recon_matrix[0] > 0 && samples == 2 * h->recon_matrix[0] && samples % 2 == 0 ? 2 : 1;
		b->readout_acq = samples;
	}
	if (b->oversampling == 2 && b->readout_acq % 2)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": an oversampled readout of odd length %ld", b->n_added,
				    head->scan_counter, b->readout_acq);
	b->dims[R5_DIM_X] = b->readout_acq / b->oversampling;
	if (b->dims[R5_DIM_COIL] == 0)
		b->dims[R5_DIM_COIL] = head->active_channels;
	R5_TRY(r5_scan_check_budget(b->dims, b->max_bytes, "k-space"));
	r5_scan *scan = b->scan;
	R5_TRY(r5_array_zeros_lazy(b->dims, &scan->kspace)); /* resident as lines arrive */
	r5_dims_copy(scan->mask_dims, b->dims);
	scan->mask_dims[R5_DIM_X] = scan->mask_dims[R5_DIM_COIL] = 1;
	r5_dims_strides(b->mask_strides, scan->mask_dims);
	size_t n = (size_t)r5_dims_size(scan->mask_dims);
	scan->sampled = calloc(n, 1);
	scan->calib = calloc(n, 1);
	scan->imaging = calloc(n, 1);
	scan->n_slices = b->dims[R5_DIM_SLICE];
	scan->geometry = calloc((size_t)scan->n_slices, sizeof *scan->geometry);
	if (!scan->sampled || !scan->calib || !scan->imaging || !scan->geometry)
		return r5_set_error(R5_ENOMEM, "k-space sampling masks (%zu lines)", n);
	scan->readout_oversampling = b->oversampling;
	scan->acq_dwell_us = head->sample_time_us * (float)b->oversampling;
	if (b->oversampling == 2) {
		long full[R5_DIMS], half[R5_DIMS];
		r5_dims_ones(full);
		full[R5_DIM_X] = b->readout_acq;
		full[R5_DIM_COIL] = b->dims[R5_DIM_COIL];
		r5_dims_copy(half, full);
		half[R5_DIM_X] = b->readout_acq / 2;
		R5_TRY(r5_ctx_create(&b->ctx, "cpu", 0));
		R5_TRY(r5_array_alloc(b->ctx, R5_HOST, full, &b->line_full));
		R5_TRY(r5_array_alloc(b->ctx, R5_HOST, half, &b->line_half));
	}
	r5_info("scan: k-space %ldx%ldx%ld, %ld channels, readout oversampling %d", b->dims[0], b->dims[1], b->dims[2],
		b->dims[3], b->oversampling);
	return R5_OK;
}

static r5_status add_noise(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data)
{
	long coils = head->active_channels, samples = head->number_of_samples;
	long expected = b->noise_coils ? b->noise_coils : b->scan->header.n_channels;
	if (expected > 0 && coils != expected)
		return r5_set_error(R5_EINVAL, ACQ_FMT " (noise) has %ld channels, %s %ld", b->n_added, head->scan_counter,
				    coils, b->noise_coils ? "earlier noise scans had" : "header says", expected);
	b->noise_coils = (int)coils;
	long n = coils * samples;
	if ((double)(b->noise_len + n) * sizeof(float complex) > (double)b->max_bytes)
		return r5_set_error(R5_ENOMEM, ACQ_FMT ": noise scans exceed the memory budget", b->n_added, head->scan_counter);
	if (b->noise_len + n > b->noise_cap) {
		long cap = 2 * (b->noise_len + n);
		float complex *grown = realloc(b->noise, (size_t)cap * sizeof *grown);
		if (!grown)
			return r5_set_error(R5_ENOMEM, "noise scans (%ld samples)", cap);
		b->noise = grown;
		b->noise_cap = cap;
	}
	if (b->n_noise_chunks == b->noise_chunks_cap) {
		long cap = b->noise_chunks_cap ? 2 * b->noise_chunks_cap : 16;
		long *grown = realloc(b->noise_chunks, (size_t)cap * sizeof *grown);
		if (!grown)
			return r5_set_error(R5_ENOMEM, "noise scan list");
		b->noise_chunks = grown;
		b->noise_chunks_cap = cap;
	}
	if (n > 0)
		memcpy(b->noise + b->noise_len, data, (size_t)n * sizeof *data);
	b->noise_len += n;
	b->noise_samples += samples;
	b->noise_chunks[b->n_noise_chunks++] = samples;
	b->scan->noise_dwell_us = head->sample_time_us;
	return R5_OK;
}

static r5_status check_channels(const r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head)
{
	long coils = head->active_channels;
	if (coils < 1)
		return r5_set_error(R5_EINVAL, ACQ_FMT " has no active channels", b->n_added, head->scan_counter);
	if (b->scan->header.n_channels > 0 && coils != b->scan->header.n_channels)
		return r5_set_error(R5_EINVAL, ACQ_FMT " has %ld channels, header says %d", b->n_added, head->scan_counter,
				    coils, b->scan->header.n_channels);
	if (b->dims[R5_DIM_COIL] > 0 && coils != b->dims[R5_DIM_COIL])
		return r5_set_error(R5_EINVAL, ACQ_FMT " has %ld channels, earlier acquisitions had %ld", b->n_added,
				    head->scan_counter, coils, b->dims[R5_DIM_COIL]);
	return R5_OK;
}

/* Row of a phase-encode counter after centring; an error naming the counter when outside. */
static r5_status encode_row(const r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const char *name,
			    long counter, const r5_limit *limit, long n, long *row)
{
	long centre = limit->present ? limit->center : n / 2;
	*row = counter + n / 2 - centre;
	if (*row >= 0 && *row < n)
		return R5_OK;
	if (*row == counter)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": %s = %ld outside encoded matrix %ld", b->n_added,
				    head->scan_counter, name, counter, n);
	return r5_set_error(R5_EINVAL, ACQ_FMT ": %s = %ld outside encoded matrix %ld (centre %ld puts it at %ld)",
			    b->n_added, head->scan_counter, name, counter, n, centre, *row);
}

static r5_status positions(const r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, long pos[R5_DIMS])
{
	const r5_header *h = &b->scan->header;
	const ISMRMRD_EncodingCounters *idx = &head->idx;
	for (int d = 0; d < R5_DIMS; d++)
		pos[d] = 0;
	R5_TRY(encode_row(b, head, "k1", idx->kspace_encode_step_1, &h->k1, b->dims[R5_DIM_Y], &pos[R5_DIM_Y]));
	R5_TRY(encode_row(b, head, "k2", idx->kspace_encode_step_2, &h->k2, b->dims[R5_DIM_Z], &pos[R5_DIM_Z]));
	const struct {
		const char *name;
		int dim;
		long value;
		const r5_limit *limit;
	} counters[] = {
		{"contrast", R5_DIM_TE, idx->contrast, &h->contrast},
		{"set", R5_DIM_COEFF, idx->set, &h->set},
		{"repetition", R5_DIM_TIME, idx->repetition, &h->repetition},
		{"phase", R5_DIM_TIME2, idx->phase, &h->phase},
		{"slice", R5_DIM_SLICE, idx->slice, &h->slice},
		{"average", R5_DIM_AVG, idx->average, &h->average},
	};
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		long v = counters[i].value, n = b->dims[counters[i].dim];
		if (v >= n) {
			if (counters[i].limit->present)
				return r5_set_error(R5_EINVAL, ACQ_FMT ": %s %ld outside encodingLimits/%s %d..%d", b->n_added,
						    head->scan_counter, counters[i].name, v, counters[i].name,
						    counters[i].limit->min, counters[i].limit->max);
			return r5_set_error(R5_EINVAL, ACQ_FMT ": %s %ld but the header has no encodingLimits/%s", b->n_added,
					    head->scan_counter, counters[i].name, v, counters[i].name);
		}
		pos[counters[i].dim] = v;
	}
	return R5_OK;
}

/* line_full [readout_acq, coils] onto the k-space x grid: itself, or (2x oversampled) the central
 * half of its doubled FOV in line_half. */
static r5_status remove_oversampling(r5_scan_builder *b, const r5_array **result)
{
	r5_array *line = b->line_full;
	*result = line;
	if (b->oversampling == 1)
		return R5_OK;
	/* to image space along the readout, keep the central half of the doubled FOV, back */
	R5_TRY(r5_ifft(b->ctx, R5_FLAG(R5_DIM_X), line, line));
	R5_TRY(r5_zresize_centered(b->ctx, b->line_half, line));
	R5_TRY(r5_fft(b->ctx, R5_FLAG(R5_DIM_X), b->line_half, b->line_half));
	R5_TRY(r5_zscale(b->ctx, b->line_half, (float)sqrt(0.5)));
	*result = b->line_half;
	return R5_OK;
}

/* Samples a line with a 1D readout trajectory may have: computing its matrix costs M^3 / 3 +
 * 2 M^2 n0 (readout_grid.h), which a stream must not be able to make take minutes. Ramp
 * sampling with 2x readout oversampling is about 2.5 samples per grid point. */
#define R5_REGRID_MAX_PER_POINT 8
#define R5_REGRID_MAX_SAMPLES 4096

/* Positions of a line with a 1D readout trajectory (scan.h): enough kept samples and not too
 * many, every one finite and within [-n0/2 - 2, n0/2 + 2] cycles of the encoded x grid (n0
 * points). */
static r5_status check_readout_traj(const r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float *traj,
				    long n0)
{
	long ns = head->number_of_samples, pre = head->discard_pre, kept = ns - pre - head->discard_post;
	if (!traj)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": trajectory_dimensions 1 but no traj array (a readout "
				    "trajectory gives k0 of every sample)", b->n_added, head->scan_counter);
	if (n0 < 2)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": a readout trajectory (trajectory_dimensions 1) needs the header's "
				    "encodedSpace/matrixSize/x (the grid it is regridded onto), it is %ld", b->n_added,
				    head->scan_counter, n0);
	if (2 * kept < n0)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": a readout trajectory with %ld samples (number_of_samples %ld, "
				    "discard_pre %ld, discard_post %u) for an encoded x of %ld: too few samples to regrid "
				    "(at least %ld)", b->n_added, head->scan_counter, kept, ns, pre, head->discard_post, n0,
				    (n0 + 1) / 2);
	if (kept > R5_REGRID_MAX_PER_POINT * n0)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": a readout trajectory with %ld samples for an encoded x of %ld: "
				    "more than %d samples per grid point", b->n_added, head->scan_counter, kept, n0,
				    R5_REGRID_MAX_PER_POINT);
	if (kept > R5_REGRID_MAX_SAMPLES)
		return r5_set_error(R5_ERANGE, ACQ_FMT ": a readout trajectory with %ld samples: regridding takes at most %d",
				    b->n_added, head->scan_counter, kept, R5_REGRID_MAX_SAMPLES);
	double lo = -(double)(n0 / 2) - 2.0, hi = (double)(n0 - 1 - n0 / 2) + 2.0;
	for (long j = pre; j < pre + kept; j++)
		if (!isfinite(traj[j]) || traj[j] < lo || traj[j] > hi)
			return r5_set_error(R5_EINVAL,
					    ACQ_FMT ": readout trajectory sample %ld at k0 = %g cycles/FOV, outside [%g, %g] "
						    "(the encoded x grid %ld .. %ld, 2 more either side)",
					    b->n_added, head->scan_counter, j, (double)traj[j], lo, hi, -(n0 / 2), n0 - 1 - n0 / 2);
	return R5_OK;
}

/* A line with a 1D readout trajectory: its kept samples regridded (readout_grid.h) onto the n0
 * points of the encoded x grid, then as any line. With a 2x oversampled header the encoded grid
 * is the oversampled readout (line_full, oversampling removed as usual); when the acquisitions
 * were found oversampled against the header (readout_acq = 2 n0) the encoded grid is already the
 * k-space x (line_half). The reverse flag and center_sample are not used: traj says where every
 * sample is. */
static r5_status regrid_line(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			     const float *traj, const r5_array **result)
{
	long n0 = b->scan->header.enc_matrix[0];
	R5_TRY(check_readout_traj(b, head, traj, n0));
	long ns = head->number_of_samples, pre = head->discard_pre, kept = ns - pre - head->discard_post;
	r5_array *line = n0 == b->readout_acq ? b->line_full
			 : b->line_half && n0 == b->line_half->dims[R5_DIM_X] ? b->line_half : NULL;
	if (!line)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": a readout trajectory onto the encoded x of %ld, but the scan's "
				    "readout is %ld samples (earlier lines)", b->n_added, head->scan_counter, n0,
				    b->readout_acq);
	/* one pattern's G is n0 x kept complex doubles, its computation holds kept x kept and two
	 * more kept x n0: within the k-space budget */
	double pattern_bytes = (double)n0 * (double)kept * sizeof(double complex);
	double work_bytes = ((double)kept * (double)kept + 2.0 * (double)kept * (double)n0) * sizeof(double complex);
	if (pattern_bytes * R5_READOUT_GRID_PATTERNS + work_bytes > (double)b->max_bytes)
		return r5_set_error(R5_ENOMEM, ACQ_FMT ": regridding %ld samples onto %ld needs %.1f MiB per trajectory "
				    "pattern (%d kept), memory budget is %.1f MiB", b->n_added, head->scan_counter, kept, n0,
				    pattern_bytes / 1048576.0, R5_READOUT_GRID_PATTERNS, (double)b->max_bytes / 1048576.0);
	if (!b->regrid)
		R5_TRY(r5_readout_grid_create(n0, R5_READOUT_GRID_OS * n0, &b->regrid));
	if (kept > b->regrid_k_cap) {
		double *grown = realloc(b->regrid_k, sizeof *grown * (size_t)kept);
		if (!grown)
			return r5_set_error(R5_ENOMEM, "readout trajectory (%ld samples)", kept);
		b->regrid_k = grown;
		b->regrid_k_cap = kept;
	}
	for (long j = 0; j < kept; j++)
		b->regrid_k[j] = traj[pre + j];
	r5_status s = r5_readout_grid_apply(b->regrid, kept, b->regrid_k, b->dims[R5_DIM_COIL], data + pre, ns,
					    line->data, n0);
	if (s != R5_OK)
		return r5_error_context(s, ACQ_FMT, b->n_added, head->scan_counter);
	if (line == b->line_full)
		return remove_oversampling(b, result);
	*result = line;
	return R5_OK;
}

/* Copies the kept samples of each channel into line [readout_acq, coils] (reversed when
 * flagged, placed so that center_sample is at the readout centre), then removes oversampling.
 * *result points at the line on the k-space x grid. */
static r5_status assemble_line(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			       const r5_array **result)
{
	long ns = head->number_of_samples, pre = head->discard_pre, post = head->discard_post;
	long kept = ns - pre - post, n = b->readout_acq;
	int reverse = flag_set(head->flags, ISMRMRD_ACQ_IS_REVERSE);
	long centre = (long)head->center_sample - pre;
	if (reverse)
		centre = kept - 1 - centre;
	long offset = kept == n ? 0 : n / 2 - centre;
	if (kept < 1 || offset < 0 || offset + kept > n) {
		const r5_header *h = &b->scan->header;
		return r5_set_error(R5_EINVAL,
				    ACQ_FMT ": number_of_samples %ld (discard_pre %ld, discard_post %ld, center_sample %u) "
					    "but the header encodes %ld readout samples (or %ld oversampled)",
				    b->n_added, head->scan_counter, ns, pre, post, head->center_sample,
				    h->enc_matrix[0] > 0 ? h->enc_matrix[0] : n, 2 * (h->enc_matrix[0] > 0 ? h->enc_matrix[0] : n));
	}
	r5_array *line = b->line_full;
	memset(line->data, 0, (size_t)r5_array_size(line) * sizeof *line->data);
	long coils = b->dims[R5_DIM_COIL];
	for (long c = 0; c < coils; c++) {
		const float complex *src = data + c * ns + pre;
		float complex *dst = line->data + c * n + offset;
		for (long j = 0; j < kept; j++)
			dst[j] = src[reverse ? kept - 1 - j : j];
	}
	return remove_oversampling(b, result);
}

static void store_line(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const long pos[R5_DIMS],
		       const r5_array *line)
{
	r5_scan *scan = b->scan;
	long mask = 0, base = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		mask += pos[d] * b->mask_strides[d];
		base += pos[d] * scan->kspace->strides[d];
	}
	int calib_only = flag_set(head->flags, ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION);
	int calib = calib_only || flag_set(head->flags, ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING);
	b->n_placed++;
	if (calib_only && scan->imaging[mask])
		return; /* a reference line never replaces image data */
	long nx = b->dims[R5_DIM_X];
	for (long c = 0; c < b->dims[R5_DIM_COIL]; c++)
		memcpy(scan->kspace->data + base + c * scan->kspace->strides[R5_DIM_COIL], line->data + c * nx,
		       (size_t)nx * sizeof *line->data);
	b->n_lines += !scan->sampled[mask];
	scan->sampled[mask] = 1;
	if (calib)
		scan->calib[mask] = 1;
	if (!calib_only) {
		scan->imaging[mask] = 1;
		b->n_imaging++;
	}
	r5_slice_geometry *g = &scan->geometry[pos[R5_DIM_SLICE]];
	if (!g->present) {
		memcpy(g->position, head->position, sizeof g->position);
		memcpy(g->read_dir, head->read_dir, sizeof g->read_dir);
		memcpy(g->phase_dir, head->phase_dir, sizeof g->phase_dir);
		memcpy(g->slice_dir, head->slice_dir, sizeof g->slice_dir);
		memcpy(g->table_position, head->patient_table_position, sizeof g->table_position);
		g->present = 1;
	}
}

static int skipped_kind(uint64_t flags)
{
	static const int kinds[] = {ISMRMRD_ACQ_IS_NAVIGATION_DATA, ISMRMRD_ACQ_IS_PHASECORR_DATA,
				    ISMRMRD_ACQ_IS_HPFEEDBACK_DATA, ISMRMRD_ACQ_IS_DUMMYSCAN_DATA,
				    ISMRMRD_ACQ_IS_RTFEEDBACK_DATA, ISMRMRD_ACQ_IS_SURFACECOILCORRECTIONSCAN_DATA,
				    ISMRMRD_ACQ_IS_PHASE_STABILIZATION_REFERENCE, ISMRMRD_ACQ_IS_PHASE_STABILIZATION};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (flag_set(flags, kinds[i]))
			return 1;
	return 0;
}

static r5_status add_imaging(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			     const float *traj)
{
	R5_TRY(check_channels(b, head));
	long kept = (long)head->number_of_samples - head->discard_pre - head->discard_post;
	if (kept < 1)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": number_of_samples %u leaves nothing after discard_pre %u + post %u",
				    b->n_added, head->scan_counter, head->number_of_samples, head->discard_pre,
				    head->discard_post);
	/* a line with a 1D readout trajectory is regridded onto the encoded x: its sample count says
	 * nothing about oversampling */
	int regrid = head->trajectory_dimensions == 1;
	if (!b->scan->kspace) {
		long ex = b->scan->header.enc_matrix[0];
		if (regrid && ex < 2)
			return check_readout_traj(b, head, traj, ex);
		r5_status s = allocate_kspace(b, head, regrid ? ex : kept);
		if (s != R5_OK)
			return s;
		if (!b->line_full) {
			long dims[R5_DIMS];
			r5_dims_ones(dims);
			dims[R5_DIM_X] = b->readout_acq;
			dims[R5_DIM_COIL] = b->dims[R5_DIM_COIL];
			R5_TRY(r5_array_alloc_host(dims, &b->line_full));
		}
	}
	long pos[R5_DIMS];
	R5_TRY(positions(b, head, pos));
	const r5_array *line = NULL;
	R5_TRY(regrid ? regrid_line(b, head, data, traj, &line) : assemble_line(b, head, data, &line));
	store_line(b, head, pos, line);
	return R5_OK;
}

/* --- non-Cartesian: spokes in arrival order --- */

/* --- trajectories from the header (scan.h) --- */

static int name_is(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (strcasecmp(name, *names) == 0)
			return 1;
	return 0;
}

static int header_long(const r5_header *h, const char *const *names, long *out)
{
	for (int i = 0; i < h->n_traj_long; i++)
		if (name_is(h->traj_long_name[i], names)) {
			*out = h->traj_long[i];
			return 1;
		}
	return 0;
}

/* the angle increment in radians, from angle_increment_deg or angle_increment_rad */
static int header_increment(const r5_header *h, double *out)
{
	static const char *const deg[] = {"angle_increment_deg", "angleIncrement_deg", NULL};
	static const char *const rad[] = {"angle_increment_rad", "angle_increment", "angleIncrement", NULL};
	for (int i = 0; i < h->n_traj_double; i++) {
		if (name_is(h->traj_double_name[i], deg)) {
			*out = h->traj_double[i] * R5_PI / 180.0;
			return 1;
		}
		if (name_is(h->traj_double_name[i], rad)) {
			*out = h->traj_double[i];
			return 1;
		}
	}
	return 0;
}

#define R5_INCREMENT_TOLERANCE 1e-6 /* radians: increments written to 7 digits in degrees match */

/* A uniform set of S spokes over 180 (or 360) degrees: its count from the header. */
static int header_uniform_count(const r5_header *h, long *count)
{
	static const char *const names[] = {"spokes", "number_of_spokes", "num_spokes", "projections", NULL};
	if (header_long(h, names, count))
		return *count >= 1;
	if (h->k1.present && h->k1.max >= 0) {
		*count = (long)h->k1.max + 1;
		return 1;
	}
	return 0;
}

/* Which traj.h kind an angle increment is: golden, tiny golden N (2..64), uniform pi / S. */
static int kind_from_increment(double inc, double *psi, long *period)
{
	*period = 0;
	if (fabs(inc - r5_radial_golden_step()) <= R5_INCREMENT_TOLERANCE) {
		*psi = r5_radial_golden_step();
		return 1;
	}
	for (int n = 2; n <= 64; n++)
		if (fabs(inc - r5_radial_tiny_golden_step(n)) <= R5_INCREMENT_TOLERANCE) {
			*psi = r5_radial_tiny_golden_step(n);
			return 1;
		}
	double count = R5_PI / inc;
	if (inc > 0 && fabs(count - floor(count + 0.5)) * inc <= R5_INCREMENT_TOLERANCE && count >= 1 && count < 1e6) {
		*period = (long)floor(count + 0.5);
		*psi = R5_PI / (double)*period;
		return 1;
	}
	return 0;
}

/* The rule the header gives (scan.h), or why there is none (in why). */
static int header_rule(r5_scan_builder *b, char *why, size_t size)
{
	const r5_header *h = &b->scan->header;
	static const char *const golden[] = {"radial_golden_angle", "golden_angle", "goldenangle", "radial_goldenangle",
					     NULL};
	static const char *const tiny[] = {"radial_tiny_golden_angle", "tiny_golden_angle", NULL};
	static const char *const tiny_names[] = {"tiny_golden_index", "tiny_index", NULL};
	static const char *const uniform[] = {"radial_uniform", NULL};
	const char *id = h->traj_identifier;
	double psi = 0, inc = 0;
	long period = 0, count = 0, tiny_index = 0;
	int has_inc = header_increment(h, &inc);
	if (strcmp(h->trajectory, "radial") && strcmp(h->trajectory, "goldenangle")) {
		snprintf(why, size, "only radial and goldenangle trajectories are computed from the header");
		return 0;
	}
	if (name_is(id, golden) || (!id[0] && !strcmp(h->trajectory, "goldenangle"))) {
		psi = r5_radial_golden_step();
	} else if (name_is(id, tiny)) {
		if (!header_long(h, tiny_names, &tiny_index) || tiny_index < 1 || tiny_index > 1000) {
			snprintf(why, size, "trajectoryDescription %s needs userParameterLong tiny_golden_index >= 1", id);
			return 0;
		}
		psi = r5_radial_tiny_golden_step((int)tiny_index);
	} else if (name_is(id, uniform) || !strcasecmp(id, "radial_uniform_360") || (!strcasecmp(id, "radial") && !has_inc)) {
		if (!header_uniform_count(h, &count)) {
			snprintf(why, size, "trajectoryDescription %s needs the number of spokes (userParameterLong spokes, or "
				 "encodingLimits/kspace_encoding_step_1)", id);
			return 0;
		}
		period = count;
		psi = (!strcasecmp(id, "radial_uniform_360") ? 2.0 : 1.0) * R5_PI / (double)count;
	} else if (!strcasecmp(id, "radial")) {
		if (!kind_from_increment(inc, &psi, &period)) {
			snprintf(why, size, "an angle increment of %.6g degrees is not a golden, tiny golden (2..64) or uniform "
				 "(180 / S) increment", inc * 180.0 / R5_PI);
			return 0;
		}
	} else {
		snprintf(why, size, "%s%.63s%s", id[0] ? "trajectoryDescription identifier '" : "no trajectoryDescription",
			 id, id[0] ? "' is not one recon5t computes (radial_golden_angle, radial_tiny_golden_angle, radial, "
				    "radial_uniform, radial_uniform_360)" : "");
		return 0;
	}
	if (has_inc && fabs(inc - psi) > R5_INCREMENT_TOLERANCE) {
		snprintf(why, size, "its angle increment %.6g degrees disagrees with %s's %.6g degrees", inc * 180.0 / R5_PI,
			 id[0] ? id : h->trajectory, psi * 180.0 / R5_PI);
		return 0;
	}
	if (h->enc_matrix[0] < 2) {
		snprintf(why, size, "the encoded matrix has no x size to scale the spokes");
		return 0;
	}
	b->traj_from_header = 1;
	b->header_psi = psi;
	b->header_period = period;
	r5_info("scan: trajectory from the header: radial, angle increment %.6f degrees%s", psi * 180.0 / R5_PI,
		period ? " (a uniform set, repeated)" : "");
	return 1;
}

/* This spoke's coordinates as an acquisition's traj (2 per sample, samples pre .. pre + kept - 1
 * set): spoke number n_spokes of the rule, kmax = encoded x / 2 over the kept samples. */
static r5_status header_spoke(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float **traj)
{
	long ns = head->number_of_samples, pre = head->discard_pre, kept = ns - pre - head->discard_post;
	if (kept < 2)
		return R5_OK; /* add_spoke refuses it */
	if (head->center_sample != 0 && (long)head->center_sample - pre != kept / 2)
		return r5_set_error(R5_ENOTSUP, ACQ_FMT ": center_sample %u of %ld kept samples (discard_pre %ld): an "
				    "asymmetric echo's trajectory is not computed from the header (send traj)", b->n_added,
				    head->scan_counter, head->center_sample, kept, pre);
	long need = 3 * kept + 2 * ns;
	if (need > b->header_coords_len) {
		float *grown = realloc(b->header_coords, sizeof *grown * (size_t)need);
		if (!grown)
			return r5_set_error(R5_ENOMEM, "trajectory from the header (%ld samples)", ns);
		b->header_coords = grown;
		b->header_coords_len = need;
	}
	long s = b->header_period ? b->n_spokes % b->header_period : b->n_spokes;
	float *three = b->header_coords, *two = b->header_coords + 3 * kept;
	r5_radial_spoke_2d(kept, 0.5 * (double)b->scan->header.enc_matrix[0], 0.0,
			   r5_radial_spoke_angle(b->header_psi, s), three);
	memset(two, 0, sizeof *two * 2 * (size_t)ns);
	for (long j = 0; j < kept; j++)
		two[2 * (pre + j)] = three[3 * j], two[2 * (pre + j) + 1] = three[3 * j + 1];
	*traj = two;
	return R5_OK;
}

/* Cartesian or spokes, decided at the first imaging acquisition; later ones must agree. */
static r5_status decide_trajectory(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float *traj)
{
	int dims = head->trajectory_dimensions;
	int carries = dims >= 2 && traj;
	if (b->nc < 0) {
		char why[256] = "";
		if (b->header_nc && !(dims > 0 && traj) && header_rule(b, why, sizeof why)) {
			const r5_header *h = &b->scan->header;
			if (h->enc_matrix[0] != h->enc_matrix[1])
				return r5_set_error(R5_ENOTSUP,
						    ACQ_FMT ": radial spokes computed from the header need a square encoded "
							    "matrix (it is %ldx%ld: the spokes' reach along y would differ)",
						    b->n_added, head->scan_counter, h->enc_matrix[0], h->enc_matrix[1]);
			b->nc = 1;
			b->traj_dims = 2;
			return R5_OK;
		}
		if (b->header_nc && !(dims > 0 && traj))
			return r5_set_error(R5_EINVAL,
					    ACQ_FMT ": the header's trajectory is '%s' but the acquisition carries none "
						    "(trajectory_dimensions %d%s), and the header does not say how to compute "
						    "it (%s): trajectory missing",
					    b->n_added, head->scan_counter, b->scan->header.trajectory, dims,
					    dims > 0 ? ", no traj array" : "", why);
		b->nc = b->header_nc || carries;
		if (b->nc && dims == 1)
			return r5_set_error(R5_EINVAL,
					    ACQ_FMT ": trajectory_dimensions 1 (a readout trajectory, regridded along a "
						    "Cartesian or EPI line) but the header's trajectory is '%s': a "
						    "non-Cartesian spoke has 2 or 3",
					    b->n_added, head->scan_counter, b->scan->header.trajectory);
		if (b->nc && dims != 2 && dims != 3)
			return r5_set_error(R5_EINVAL, ACQ_FMT ": trajectory_dimensions %d (a non-Cartesian spoke has 2 or 3)",
					    b->n_added, head->scan_counter, dims);
		b->traj_dims = b->nc ? dims : 0;
		return R5_OK;
	}
	if (b->traj_from_header) {
		if (dims > 0 && traj)
			return r5_set_error(R5_EINVAL, ACQ_FMT ": carries a trajectory but earlier spokes' came from the "
					    "header: a scan's trajectory comes from its acquisitions or its header throughout",
					    b->n_added, head->scan_counter);
		return R5_OK;
	}
	if (b->nc == 1 && !(dims > 0 && traj))
		return r5_set_error(R5_EINVAL, ACQ_FMT ": no trajectory (trajectory_dimensions %d%s), earlier spokes had %d: "
				    "trajectory missing", b->n_added, head->scan_counter, dims, dims > 0 ? ", no traj array" : "",
				    b->traj_dims);
	if (b->nc == 1 && dims != b->traj_dims)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": trajectory_dimensions %d, earlier spokes had %d", b->n_added,
				    head->scan_counter, dims, b->traj_dims);
	if (b->nc == 0 && carries)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": carries a trajectory (trajectory_dimensions %d) but earlier imaging "
				    "acquisitions had none: a scan is Cartesian or non-Cartesian throughout",
				    b->n_added, head->scan_counter, dims);
	return R5_OK;
}

/* Every kept sample's coordinates in [-N_d/2, N_d/2] of the encoded matrix (N_d = 1: [-1/2, 1/2]). */
static r5_status check_spoke_traj(const r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float *traj,
				  long pre, long kept)
{
	const r5_header *h = &b->scan->header;
	int D = b->traj_dims;
	for (long j = 0; j < kept; j++)
		for (int d = 0; d < D; d++) {
			long n = h->enc_matrix[d] > 1 ? h->enc_matrix[d] : 1;
			double half = 0.5 * (double)n;
			float k = traj[(pre + j) * D + d];
			if (!isfinite(k) || k < -half || k > half)
				return r5_set_error(R5_EINVAL,
						    ACQ_FMT ": trajectory sample %ld has k%d = %g cycles/FOV, outside [%g, %g] "
							    "for the encoded matrix's %ld along dimension %d",
						    b->n_added, head->scan_counter, pre + j, d, (double)k, -half, half, n, d);
		}
	return R5_OK;
}

/* Bytes one kept spoke takes in the builder: samples and coordinates. */
static double spoke_bytes(const r5_scan_builder *b)
{
	return (double)b->spoke_read * ((double)b->spoke_coils * sizeof(float complex) + 3.0 * sizeof(float));
}

/* Buffers of cap spokes (growing or shrinking); the kept spokes stay. */
static r5_status resize_spokes(r5_scan_builder *b, long cap)
{
	size_t samples = (size_t)(b->spoke_read * b->spoke_coils), coords = (size_t)(3 * b->spoke_read);
	float complex *grown = realloc(b->spoke_samples, sizeof *grown * samples * (size_t)cap);
	if (!grown)
		return r5_set_error(R5_ENOMEM, "non-Cartesian k-space: %ld spokes", cap);
	b->spoke_samples = grown;
	if (cap < b->spokes_cap)
		b->spokes_cap = cap; /* both buffers hold at least cap spokes whatever follows */
	float *grown_traj = realloc(b->spoke_traj, sizeof *grown_traj * coords * (size_t)cap);
	if (!grown_traj)
		return r5_set_error(R5_ENOMEM, "non-Cartesian trajectory: %ld spokes", cap);
	b->spoke_traj = grown_traj;
	b->spokes_cap = cap;
	return R5_OK;
}

/* Room for one more kept spoke; the budget counts the spokes held (released ones are gone). */
static r5_status grow_spokes(r5_scan_builder *b)
{
	long kept = b->n_spokes - b->spoke_base;
	if (kept < b->spokes_cap)
		return R5_OK;
	long cap = b->spokes_cap ? 2 * b->spokes_cap : 64;
	double per = spoke_bytes(b);
	if ((double)(kept + 1) * per > (double)b->max_bytes)
		return r5_set_error(R5_ENOMEM, "non-Cartesian k-space: %ld spokes of %ld samples x %ld channels exceed the "
				    "memory budget of %.1f MiB", kept + 1, b->spoke_read, b->spoke_coils,
				    (double)b->max_bytes / 1048576.0);
	if ((double)cap * per > (double)b->max_bytes)
		cap = (long)((double)b->max_bytes / per);
	return resize_spokes(b, cap);
}

static void spoke_geometry(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head)
{
	r5_slice_geometry *g = &b->scan->geometry[0];
	if (g->present)
		return;
	memcpy(g->position, head->position, sizeof g->position);
	memcpy(g->read_dir, head->read_dir, sizeof g->read_dir);
	memcpy(g->phase_dir, head->phase_dir, sizeof g->phase_dir);
	memcpy(g->slice_dir, head->slice_dir, sizeof g->slice_dir);
	memcpy(g->table_position, head->patient_table_position, sizeof g->table_position);
	g->present = 1;
}

/* One spoke: all its kept samples (oversampled readouts stay oversampled), its coordinates. */
static r5_status add_spoke(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			   const float *traj)
{
	R5_TRY(check_channels(b, head));
	long ns = head->number_of_samples, pre = head->discard_pre, post = head->discard_post, kept = ns - pre - post;
	long coils = head->active_channels;
	if (kept < 2)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": number_of_samples %ld leaves %ld after discard_pre %ld + post %ld "
				    "(a spoke needs 2)", b->n_added, head->scan_counter, ns, kept, pre, post);
	if (head->idx.slice != 0)
		return r5_set_error(R5_ENOTSUP, ACQ_FMT ": slice %u: non-Cartesian scans of more than one slice are not "
				    "supported yet (send one slice per scan)", b->n_added, head->scan_counter, head->idx.slice);
	if (b->traj_dims == 2 && b->scan->header.enc_matrix[2] > 1)
		return r5_set_error(R5_ENOTSUP, ACQ_FMT ": a 2D trajectory (trajectory_dimensions 2) in a 3D encoded matrix "
				    "(z = %ld): stack-of-stars scans are not supported yet", b->n_added, head->scan_counter,
				    b->scan->header.enc_matrix[2]);
	if (b->n_spokes == 0) {
		b->spoke_read = kept;
		b->spoke_coils = coils;
		b->dims[R5_DIM_COIL] = coils;
		if (!b->scan->geometry) /* a first spoke refused below leaves it for the next */
			b->scan->geometry = calloc(1, sizeof *b->scan->geometry);
		if (!b->scan->geometry)
			return r5_set_error(R5_ENOMEM, "slice geometry");
		b->scan->n_slices = 1;
		b->scan->acq_dwell_us = head->sample_time_us;
		long ex = b->scan->header.enc_matrix[0];
		b->scan->readout_oversampling = ex > 0 && kept == 2 * ex ? 2 : 1;
	} else if (kept != b->spoke_read) {
		return r5_set_error(R5_EINVAL, ACQ_FMT ": a spoke of %ld samples, earlier spokes had %ld (spokes of "
				    "different lengths)", b->n_added, head->scan_counter, kept, b->spoke_read);
	}
	if (b->traj_from_header)
		R5_TRY(header_spoke(b, head, &traj));
	R5_TRY(check_spoke_traj(b, head, traj, pre, kept));
	R5_TRY(grow_spokes(b));
	long slot = b->n_spokes - b->spoke_base;
	float complex *dst = b->spoke_samples + slot * kept * coils;
	for (long c = 0; c < coils; c++)
		memcpy(dst + c * kept, data + c * ns + pre, sizeof *dst * (size_t)kept);
	float *k = b->spoke_traj + slot * 3 * kept;
	int D = b->traj_dims;
	for (long j = 0; j < kept; j++)
		for (int d = 0; d < 3; d++)
			k[3 * j + d] = d < D ? traj[(pre + j) * D + d] : 0.0f;
	spoke_geometry(b, head);
	b->n_spokes++;
	b->n_placed++;
	b->n_imaging++;
	return R5_OK;
}

int r5_scan_builder_is_noncartesian(const r5_scan_builder *b) { return b && b->nc == 1; }

long r5_scan_builder_spoke_count(const r5_scan_builder *b, long *n_read, long *coils)
{
	if (n_read)
		*n_read = b && b->nc == 1 ? b->spoke_read : 0;
	if (coils)
		*coils = b && b->nc == 1 ? b->spoke_coils : 0;
	return b && b->nc == 1 ? b->n_spokes : 0;
}

r5_status r5_scan_builder_spokes(const r5_scan_builder *b, long first, long n, r5_array *samples, float *coords)
{
	if (!b || b->nc != 1)
		return r5_set_error(R5_EINVAL, "scan builder: not a non-Cartesian scan (no spokes)");
	if (first < 0 || n < 1 || first + n > b->n_spokes)
		return r5_set_error(R5_EINVAL, "scan builder: spokes %ld..%ld asked, %ld came", first, first + n - 1,
				    b->n_spokes);
	if (first < b->spoke_base)
		return r5_set_error(R5_EINVAL, "scan builder: spokes %ld..%ld asked, but spokes 0..%ld were released",
				    first, first + n - 1, b->spoke_base - 1);
	long read = b->spoke_read, coils = b->spoke_coils, slot = first - b->spoke_base;
	if (samples) {
		int ok = samples->where == R5_HOST && r5_array_is_contiguous(samples) && samples->dims[0] == 1 &&
			 samples->dims[1] == read && samples->dims[2] == n && samples->dims[3] == coils &&
			 r5_array_size(samples) == read * n * coils;
		if (!ok)
			return r5_set_error(R5_EINVAL, "scan builder: spokes need a host array [1 %ld %ld %ld]", read, n, coils);
		for (long s = 0; s < n; s++)
			for (long c = 0; c < coils; c++)
				memcpy(samples->data + read * (s + n * c), b->spoke_samples + ((slot + s) * coils + c) * read,
				       sizeof(float complex) * (size_t)read);
	}
	if (coords)
		memcpy(coords, b->spoke_traj + 3 * read * slot, sizeof(float) * 3 * (size_t)(read * n));
	return R5_OK;
}

/* Minimum buffer (spokes) kept after a release; below it shrinking is not worth a realloc. */
#define R5_SPOKES_MIN_CAP 64

r5_status r5_scan_builder_release_spokes(r5_scan_builder *b, long before)
{
	if (!b)
		return r5_set_error(R5_EINVAL, "scan builder: none to release spokes from");
	if (b->nc != 1 || before <= b->spoke_base)
		return R5_OK;
	if (before > b->n_spokes)
		before = b->n_spokes;
	long kept = b->n_spokes - before, drop = before - b->spoke_base, read = b->spoke_read;
	size_t per_samples = (size_t)(read * b->spoke_coils), per_coords = (size_t)(3 * read);
	if (kept > 0) {
		memmove(b->spoke_samples, b->spoke_samples + (size_t)drop * per_samples,
			sizeof *b->spoke_samples * per_samples * (size_t)kept);
		memmove(b->spoke_traj, b->spoke_traj + (size_t)drop * per_coords, sizeof *b->spoke_traj * per_coords * (size_t)kept);
	}
	b->spoke_base = before;
	/* shrink when a quarter full, to twice what is kept, so that the bytes held (and the
	 * service's reservation) follow the spokes a frame can still need */
	if (b->spokes_cap > R5_SPOKES_MIN_CAP && 4 * kept <= b->spokes_cap) {
		long cap = 2 * kept > R5_SPOKES_MIN_CAP ? 2 * kept : R5_SPOKES_MIN_CAP;
		r5_status s = resize_spokes(b, cap);
		if (s != R5_OK)
			return r5_error_context(s, "scan builder: releasing spokes before %ld", before);
	}
	return R5_OK;
}

/* The scan's k-space [1, n_read, n_spokes, coils] and trajectory [3, n_read, n_spokes]; masks
 * of one frame, all sampled. */
static r5_status finish_spokes(r5_scan_builder *b)
{
	r5_scan *scan = b->scan;
	long read = b->spoke_read, n = b->n_spokes, coils = b->spoke_coils, dims[R5_DIMS], tdims[R5_DIMS];
	r5_dims_ones(dims);
	dims[1] = read, dims[2] = n, dims[3] = coils;
	r5_dims_ones(tdims);
	tdims[0] = 3, tdims[1] = read, tdims[2] = n;
	R5_TRY(r5_array_alloc_host(dims, &scan->kspace));
	R5_TRY(r5_array_alloc_host(tdims, &scan->traj));
	R5_TRY(r5_scan_builder_spokes(b, 0, n, scan->kspace, NULL));
	for (long j = 0; j < 3 * read * n; j++)
		scan->traj->data[j] = b->spoke_traj[j];
	r5_dims_ones(scan->mask_dims);
	scan->sampled = calloc(1, 1);
	scan->calib = calloc(1, 1);
	scan->imaging = calloc(1, 1);
	if (!scan->sampled || !scan->calib || !scan->imaging)
		return r5_set_error(R5_ENOMEM, "sampling masks");
	scan->sampled[0] = scan->imaging[0] = 1;
	free(b->spoke_samples);
	free(b->spoke_traj);
	b->spoke_samples = NULL;
	b->spoke_traj = NULL;
	b->spokes_cap = 0;
	r5_info("scan: %ld spokes of %ld samples, %ld channels, %dD trajectory", n, read, coils, b->traj_dims);
	return R5_OK;
}

r5_status r5_scan_builder_add(r5_scan_builder *b, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
			      const float *traj)
{
	if (!b || !head)
		return r5_set_error(R5_EINVAL, "scan builder: no builder or acquisition header");
	if (!data && head->number_of_samples > 0 && head->active_channels > 0)
		return r5_set_error(R5_EINVAL, ACQ_FMT ": no data", b->n_added, head->scan_counter);
	r5_status s = R5_OK;
	if (flag_set(head->flags, ISMRMRD_ACQ_IS_NOISE_MEASUREMENT))
		s = add_noise(b, head, data);
	else if (skipped_kind(head->flags))
		b->n_skipped++;
	else if ((s = decide_trajectory(b, head, traj)) != R5_OK)
		;
	else if (b->nc == 1)
		s = add_spoke(b, head, data, traj);
	else
		s = add_imaging(b, head, data, traj);
	b->n_added++;
	return s;
}

long r5_scan_builder_bytes(const r5_scan_builder *b)
{
	if (!b)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	double bytes = (double)b->noise_cap * sizeof(float complex) + (double)b->noise_chunks_cap * sizeof(long);
	if (b->scan && b->scan->kspace) {
		const r5_array *k = b->scan->kspace;
		double full = (double)r5_array_size(k) * sizeof(float complex);
		/* a line is one readout per coil, each in its own run of pages of the lazily zeroed
		 * grid (r5_array_zeros_lazy: no huge pages) */
		double run = (double)((b->dims[R5_DIM_X] * (long)sizeof(float complex) + page - 1) / page * page);
		double touched = (double)b->n_lines * (double)b->dims[R5_DIM_COIL] * run;
		bytes += touched < full ? touched : full;
		bytes += 3.0 * (double)r5_dims_size(b->scan->mask_dims) + (double)b->scan->n_slices * sizeof(r5_slice_geometry);
	}
	if (b->line_full)
		bytes += (double)r5_array_size(b->line_full) * sizeof(float complex);
	if (b->line_half)
		bytes += (double)r5_array_size(b->line_half) * sizeof(float complex);
	bytes += (double)r5_readout_grid_bytes(b->regrid) + (double)b->regrid_k_cap * sizeof(double);
	/* spokes: the buffers as allocated (finish makes the scan's arrays beside them; a release
	 * shrinks them) */
	bytes += (double)b->spokes_cap * spoke_bytes(b);
	return (long)bytes;
}

/* The grid the header's matrix and encodingLimits imply against the lines that came: a header
 * claiming 65,536 contrasts or 32,768 partitions for a few dozen lines would make the worker
 * reconstruct (and hold) a mostly empty grid. Legitimate undersampling (R = 12 in 3D, half the
 * frames empty) stays far from the limit. */
#define R5_SCAN_MAX_EMPTY_RATIO 256.0
#define R5_SCAN_SMALL_GRID 4096

static r5_status check_proportion(const r5_scan_builder *b)
{
	const r5_scan *scan = b->scan;
	double positions = (double)r5_dims_size(scan->mask_dims);
	if (positions <= R5_SCAN_SMALL_GRID || (double)b->n_lines * R5_SCAN_MAX_EMPTY_RATIO >= positions)
		return R5_OK;
	double frames = positions / (double)(b->dims[R5_DIM_Y] * b->dims[R5_DIM_Z]);
	return r5_set_error(R5_EINVAL,
			    "the header's matrix and encodingLimits make a grid of %.0f k-space lines (%ldx%ld phase "
			    "encodes x %.0f contrasts/sets/repetitions/phases/slices/averages) but only %ld lines came: "
			    "more than %.0f times the data, refused",
			    positions, b->dims[R5_DIM_Y], b->dims[R5_DIM_Z], frames, b->n_lines, R5_SCAN_MAX_EMPTY_RATIO);
}

/* Noise chunks [coil][sample] per acquisition -> one new array [samples, coils] (NULL: none). */
static r5_status gather_noise_into(const r5_scan_builder *b, r5_array **noise)
{
	*noise = NULL;
	if (b->n_noise_chunks == 0 || b->noise_samples == 0)
		return R5_OK;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = b->noise_samples;
	dims[R5_DIM_COIL] = b->noise_coils;
	R5_TRY(r5_array_alloc_host(dims, noise));
	float complex *out = (*noise)->data;
	const float complex *in = b->noise;
	long first = 0;
	for (long k = 0; k < b->n_noise_chunks; k++) {
		long ns = b->noise_chunks[k];
		for (long c = 0; c < b->noise_coils; c++)
			memcpy(out + c * b->noise_samples + first, in + c * ns, (size_t)ns * sizeof *out);
		in += ns * b->noise_coils;
		first += ns;
	}
	return R5_OK;
}

static r5_status gather_noise(r5_scan_builder *b) { return gather_noise_into(b, &b->scan->noise); }

const r5_scan *r5_scan_builder_peek(const r5_scan_builder *b) { return b ? b->scan : NULL; }

r5_status r5_scan_builder_noise(const r5_scan_builder *b, r5_array **out)
{
	*out = NULL;
	return b ? gather_noise_into(b, out) : R5_OK;
}

r5_status r5_scan_builder_check_proportion(const r5_scan_builder *b)
{
	if (!b || !b->scan || !b->scan->sampled)
		return r5_set_error(R5_EINVAL, "scan builder: no k-space yet");
	return check_proportion(b);
}

r5_status r5_scan_builder_finish(r5_scan_builder *b, r5_scan **out)
{
	*out = NULL;
	if (!b)
		return r5_set_error(R5_EINVAL, "scan builder: none to finish");
	r5_status s = R5_OK;
	if (b->n_imaging == 0)
		s = r5_set_error(R5_EINVAL,
				 "no imaging acquisition came (%ld acquisitions: %ld noise, %ld calibration-only, %ld skipped)",
				 b->n_added, b->n_noise_chunks, b->n_placed - b->n_imaging, b->n_skipped);
	if (s == R5_OK && b->nc == 1 && b->spoke_base > 0)
		s = r5_set_error(R5_EINVAL, "scan builder: spokes 0..%ld of %ld were released (r5_scan_builder_release_spokes): "
				 "the whole scan cannot be handed over", b->spoke_base - 1, b->n_spokes);
	if (s == R5_OK)
		s = b->nc == 1 ? finish_spokes(b) : check_proportion(b);
	if (s == R5_OK)
		s = gather_noise(b);
	if (s == R5_OK) {
		b->scan->n_acquisitions = b->n_added - b->n_noise_chunks;
		b->scan->n_noise_acquisitions = b->n_noise_chunks;
		*out = b->scan;
		b->scan = NULL;
	}
	r5_scan_builder_destroy(b);
	return s;
}
