/* What r5_recon_run checks and prepares around a pipeline (pipelines.h): the input holds only
 * finite numbers, the output too, and the outer indices (contrast, set, repetition, phase,
 * slice, average, ...) that hold no sampled line are dropped before anything is computed —
 * encodingLimits can promise 65,536 contrasts for a scan that has data in two, and the
 * reconstruction must cost what the data costs, not what the limits say. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "pipelines.h"

static const char *const dim_names[R5_DIMS] = {
	"readout sample", "ky", "kz", "coil", "map", "contrast", "coefficient", "coefficient 2", "iteration",
	"chemical shift", "repetition", "phase", "level", "slice", "average", "batch",
};

/* "ky 12, kz 0, coil 3, contrast 1": the position of element i of an array of dims (x and the
 * outer dims that are 1 left out). */
static void describe_position(const long dims[R5_DIMS], long i, int with_x, char *text, size_t size)
{
	size_t used = 0;
	text[0] = '\0';
	for (int d = 0; d < R5_DIMS && used < size; d++) {
		long idx = i % dims[d];
		i /= dims[d];
		if ((d == 0 && !with_x) || (d > 3 && dims[d] == 1))
			continue;
		int n = snprintf(text + used, size - used, "%s%s %ld", used ? ", " : "", dim_names[d], idx);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Input samples beyond this magnitude are refused although finite: no scanner's raw data comes
 * near it (it is what a flipped exponent bit in a stream gives), and no scaling would leave the
 * rest of the data representable. Below it, r5_pipeline_input_shift scales large data down. */
#define R5_SAMPLE_REFUSE 1e30f
/* The largest sample component the reconstruction computes with: |x|^2 (coil combination,
 * norms) overflows single precision at 1.8e19, and image values grow by up to sqrt(N) through
 * the FFT, so larger inputs are scaled down by a power of two first (exact in floating point). */
#define R5_SAMPLE_WORKING_MAX 0x1p40f

/* What one pass over a host array found: non-finite values and (limit > 0) finite ones larger
 * than limit in magnitude, each with how many and the first one's index (-1: none). */
struct bad_values {
	long non_finite, first_non_finite, huge, first_huge;
	float peak; /* largest |re| or |im| among the finite values */
};

/* One pass in chunks, with a stop check after each. */
static r5_status count_bad(const r5_array *a, float limit, const r5_progress *progress, struct bad_values *b)
{
	long n = r5_array_size(a);
	*b = (struct bad_values){0, -1, 0, -1, 0.0f};
	for (long i0 = 0; i0 < n; i0 += R5_PROGRESS_CHUNK_VALUES) {
		long i1 = i0 + R5_PROGRESS_CHUNK_VALUES < n ? i0 + R5_PROGRESS_CHUNK_VALUES : n;
		for (long i = i0; i < i1; i++) {
			float re = crealf(a->data[i]), im = cimagf(a->data[i]);
			if (!isfinite(re) || !isfinite(im)) {
				if (b->non_finite++ == 0)
					b->first_non_finite = i;
			} else {
				float m = fmaxf(fabsf(re), fabsf(im));
				if (limit > 0 && m > limit && b->huge++ == 0)
					b->first_huge = i;
				if (m > b->peak)
					b->peak = m;
			}
		}
		R5_TRY(r5_progress_check(progress, "input check", 0.0));
	}
	return R5_OK;
}

static r5_status count_non_finite(const r5_array *a, const r5_progress *progress, long *count, long *first)
{
	struct bad_values b;
	R5_TRY(count_bad(a, 0, progress, &b));
	*count = b.non_finite;
	*first = b.first_non_finite;
	return R5_OK;
}

/* Where index i of a (k-space or the noise scan [samples, coils]) is, for a message. */
static void input_position(const r5_array *a, int is_noise, long i, char *where, size_t size)
{
	if (is_noise)
		snprintf(where, size, "sample %ld, coil %ld", i % a->dims[0], i / a->dims[0]);
	else
		describe_position(a->dims, i, 1, where, size);
}

/* R5_EINVAL naming what is wrong with an input array, or R5_OK. */
static r5_status check_array(const r5_array *a, const char *what, int is_noise, const r5_progress *progress,
			     float *peak)
{
	struct bad_values b;
	char where[256];
	R5_TRY(count_bad(a, R5_SAMPLE_REFUSE, progress, &b));
	if (b.peak > *peak)
		*peak = b.peak;
	if (b.non_finite) {
		input_position(a, is_noise, b.first_non_finite, where, sizeof where);
		return r5_set_error(R5_EINVAL, "%s contains %ld non-finite samples (NaN or Inf; first at %s)", what,
				    b.non_finite, where);
	}
	if (b.huge) {
		input_position(a, is_noise, b.first_huge, where, sizeof where);
		return r5_set_error(R5_EINVAL,
				    "%s contains %ld samples larger than %.0e in magnitude (first %.3g at %s): beyond "
				    "the scale of any raw data (a corrupted value?); check the raw data",
				    what, b.huge, (double)R5_SAMPLE_REFUSE, (double)cabsf(a->data[b.first_huge]), where);
	}
	return R5_OK;
}

r5_status r5_pipeline_check_input(const r5_scan *scan, int with_noise, const r5_progress *progress, float *peak)
{
	*peak = 0.0f;
	if (scan->kspace->where != R5_HOST || !r5_array_is_contiguous(scan->kspace))
		return R5_OK; /* the scan builder and readers make contiguous host k-space */
	R5_TRY(check_array(scan->kspace, "k-space", 0, progress, peak));
	if (with_noise && scan->noise && scan->noise->where == R5_HOST && r5_array_is_contiguous(scan->noise))
		R5_TRY(check_array(scan->noise, "the noise scan", 1, progress, peak));
	return R5_OK;
}

int r5_pipeline_input_shift(float peak)
{
	int shift = 0;
	while (shift < 128 && ldexpf(peak, -shift) > R5_SAMPLE_WORKING_MAX)
		shift++;
	return shift;
}

/* x *= 2^exponent over a contiguous host array (exact unless a value leaves the normal range).
 * Zeros are not written: the k-space grid is a lazy mapping whose unsampled pages must stay
 * unmapped (reading them maps nothing; writing would make the whole grid resident). */
static void scale_pow2(r5_array *a, int exponent)
{
	if (!a || a->where != R5_HOST || !r5_array_is_contiguous(a))
		return;
	float factor = ldexpf(1.0f, exponent);
	long n = r5_array_size(a);
	for (long i = 0; i < n; i++)
		if (crealf(a->data[i]) != 0.0f || cimagf(a->data[i]) != 0.0f)
			a->data[i] *= factor;
}

void r5_pipeline_scale_input(r5_scan *scan, int exponent)
{
	scale_pow2(scan->kspace, exponent);
	scale_pow2(scan->noise, exponent);
}

void r5_pipeline_scale_images(r5_image_set *set, int exponent)
{
	scale_pow2(set->images, exponent);
}

r5_status r5_pipeline_check_output(const r5_image_set *set)
{
	const r5_array *arrays[2] = {set->images, set->gfactor};
	const char *names[2] = {"images", "g-factor map"};
	for (int k = 0; k < 2; k++) {
		long count = 0, first = -1;
		char where[256];
		if (!arrays[k] || arrays[k]->where != R5_HOST || !r5_array_is_contiguous(arrays[k]))
			continue;
		R5_TRY(count_non_finite(arrays[k], NULL, &count, &first));
		if (count) {
			describe_position(arrays[k]->dims, first, 1, where, sizeof where);
			/* readout sample / ky / kz here are the pixel's x, y, z */
			return r5_set_error(R5_EINTERNAL,
					    "pipeline %s produced %ld non-finite values in its %s (first at pixel %s); "
					    "the input was finite, so this is a numerical failure of the pipeline",
					    set->pipeline, count, names[k], where);
		}
	}
	return R5_OK;
}

/* --- dropping outer indices without data --- */

struct outer_map {
	long n[R5_DIMS];         /* kept indices per dim (x, y, z, coil: the full size) */
	long *index[R5_DIMS];    /* index[d][j]: the scan's index of kept index j (outer dims only) */
};

static void outer_map_free(struct outer_map *m)
{
	for (int d = 0; d < R5_DIMS; d++)
		free(m->index[d]);
}

/* Which outer indices hold a sampled line; returns 1 when any dim loses an index. */
static r5_status outer_map_make(const r5_scan *scan, struct outer_map *m, int *drops)
{
	const long *md = scan->mask_dims;
	long n_frames = 1;
	*drops = 0;
	memset(m, 0, sizeof *m);
	for (int d = 0; d < R5_DIMS; d++) {
		m->n[d] = scan->kspace->dims[d];
		if (d > R5_DIM_COIL)
			n_frames *= md[d];
	}
	unsigned char *used[R5_DIMS] = {0};
	r5_status s = R5_OK;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS && s == R5_OK; d++)
		if (!(used[d] = calloc((size_t)md[d], 1)) || !(m->index[d] = malloc(sizeof *m->index[d] * (size_t)md[d])))
			s = r5_set_error(R5_ENOMEM, "reconstruction: frame map");
	for (long f = 0; f < n_frames && s == R5_OK; f++) {
		if (!r5_pipeline_frame_has_data(scan, f))
			continue;
		long rest = f;
		for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++) {
			used[d][rest % md[d]] = 1;
			rest /= md[d];
		}
	}
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS && s == R5_OK; d++) {
		m->n[d] = 0;
		for (long i = 0; i < md[d]; i++)
			if (used[d][i])
				m->index[d][m->n[d]++] = i;
		*drops |= m->n[d] < md[d];
	}
	for (int d = 0; d < R5_DIMS; d++)
		free(used[d]);
	if (s != R5_OK)
		outer_map_free(m);
	return s;
}

/* The scan's frame index of kept frame j. */
static long source_frame(const r5_scan *scan, const struct outer_map *m, long j)
{
	long f = 0, stride = 1;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++) {
		long idx = j % m->n[d];
		j /= m->n[d];
		f += m->index[d][idx] * stride;
		stride *= scan->mask_dims[d];
	}
	return f;
}

static unsigned char *copy_mask(const unsigned char *mask, const r5_scan *scan, const struct outer_map *m, long frames,
				long plane)
{
	if (!mask)
		return NULL;
	unsigned char *out = malloc((size_t)(frames * plane));
	for (long j = 0; out && j < frames; j++)
		memcpy(out + j * plane, mask + source_frame(scan, m, j) * plane, (size_t)plane);
	return out;
}

static r5_status compact(const r5_scan *scan, const struct outer_map *m, const r5_progress *progress, r5_scan *out)
{
	long dims[R5_DIMS], frames = 1, plane = scan->mask_dims[1] * scan->mask_dims[2];
	for (int d = 0; d < R5_DIMS; d++) {
		dims[d] = m->n[d];
		if (d > R5_DIM_COIL)
			frames *= m->n[d];
	}
	long frame_size = dims[0] * dims[1] * dims[2] * dims[3];
	R5_TRY(r5_array_alloc_host(dims, &out->kspace));
	long per_check = R5_PROGRESS_CHUNK_VALUES / frame_size + 1;
	for (long j = 0; j < frames; j++) {
		memcpy(out->kspace->data + j * frame_size, scan->kspace->data + source_frame(scan, m, j) * frame_size,
		       sizeof *out->kspace->data * (size_t)frame_size);
		if (j % per_check == per_check - 1)
			R5_TRY(r5_progress_check(progress, "frames with data", 0.0));
	}
	out->sampled = copy_mask(scan->sampled, scan, m, frames, plane);
	out->calib = copy_mask(scan->calib, scan, m, frames, plane);
	out->imaging = copy_mask(scan->imaging, scan, m, frames, plane);
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++)
		out->mask_dims[d] = m->n[d];
	out->n_slices = m->n[R5_DIM_SLICE];
	out->geometry = calloc((size_t)(out->n_slices > 0 ? out->n_slices : 1), sizeof *out->geometry);
	for (long j = 0; out->geometry && j < out->n_slices; j++) {
		long i = m->index[R5_DIM_SLICE][j];
		if (scan->geometry && i < scan->n_slices)
			out->geometry[j] = scan->geometry[i];
	}
	if (!out->sampled || (scan->calib && !out->calib) || (scan->imaging && !out->imaging) || !out->geometry)
		return r5_set_error(R5_ENOMEM, "reconstruction: frames with data (%ld of them)", frames);
	return R5_OK;
}

static void log_dropped(const r5_scan *scan, const struct outer_map *m)
{
	char text[512] = "";
	size_t used = 0;
	long kept = 1, total = 1;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++) {
		kept *= m->n[d];
		total *= scan->mask_dims[d];
		if (m->n[d] == scan->mask_dims[d] || used >= sizeof text)
			continue;
		int n = snprintf(text + used, sizeof text - used, "%s%s %ld of %ld", used ? ", " : "", dim_names[d], m->n[d],
				 scan->mask_dims[d]);
		used += n > 0 ? (size_t)n : 0;
	}
	r5_info("reconstruction: %ld of %ld frames hold data (%s); only those are reconstructed", kept, total, text);
}

long r5_pipeline_kept_frames(const r5_scan *scan)
{
	struct outer_map m;
	int drops = 0;
	long kept = 1;
	if (outer_map_make(scan, &m, &drops) != R5_OK)
		return -1;
	for (int d = R5_DIM_COIL + 1; d < R5_DIMS; d++)
		kept *= drops ? m.n[d] : scan->mask_dims[d];
	outer_map_free(&m);
	return kept;
}

r5_status r5_pipeline_drop_empty(const r5_scan *scan, const r5_progress *progress, r5_scan *out)
{
	*out = *scan;
	struct outer_map m;
	int drops = 0;
	R5_TRY(outer_map_make(scan, &m, &drops));
	r5_status s = R5_OK;
	if (drops && r5_pipeline_frames_with_data(scan) == 0)
		s = r5_set_error(R5_EINVAL, "reconstruction: no frame holds sampled data");
	else if (drops) {
		out->kspace = NULL;
		out->sampled = out->calib = out->imaging = NULL;
		out->geometry = NULL;
		s = compact(scan, &m, progress, out);
		if (s == R5_OK)
			log_dropped(scan, &m);
		else
			r5_pipeline_drop_empty_release(out, scan);
	}
	outer_map_free(&m);
	return s;
}

void r5_pipeline_drop_empty_release(r5_scan *out, const r5_scan *scan)
{
	if (out->kspace != scan->kspace)
		r5_array_free(out->kspace);
	if (out->sampled != scan->sampled)
		free(out->sampled);
	if (out->calib != scan->calib)
		free(out->calib);
	if (out->imaging != scan->imaging)
		free(out->imaging);
	if (out->geometry != scan->geometry)
		free(out->geometry);
	*out = *scan;
}
