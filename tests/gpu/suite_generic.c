/* GPU suite, library level: the centred unitary r5_fft / r5_ifft and the r5_zmul / r5_zsum /
 * r5_zrss wrappers, and the reconstruction kit's wrappers (r5_zcircshift and r5_zproject_box,
 * exact: tolerance 0; r5_zmaxabs) on arrays (host data moved to each context with
 * r5_array_to_work); the reduction slot zreduce_md on contiguous and strided arrays (every
 * kernel path: per thread, per block, split) and the strided axpby slot zaxpby_md (broadcast,
 * transposed and windowed operands); and whole reconstructions (r5_recon_run) of phantom scans
 * written as ISMRMRD and read back — the path a patient scan takes — on a CPU context and a GPU
 * context. Iterative pipelines (sense) amplify rounding differences, so their tolerance is 1e-3
 * (stated in the row). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "phantoms/phantom.h"
#include "recon/core/array.h"
#include "recon/core/dims.h"
#include "recon/core/fft.h"
#include "recon/io/scan.h"
#include "recon/pipeline/pipeline.h"

#include "gpu_suite.h"

#define TOL_ITERATIVE 1e-3

typedef r5_status (*array_op)(r5_ctx *ctx, r5_array *out, const r5_array *in, int arg);

static r5_status op_fft(r5_ctx *ctx, r5_array *out, const r5_array *in, int flags)
{
	return r5_fft(ctx, (unsigned long)flags, out, in);
}

static r5_status op_ifft(r5_ctx *ctx, r5_array *out, const r5_array *in, int flags)
{
	return r5_ifft(ctx, (unsigned long)flags, out, in);
}

static r5_status op_rss(r5_ctx *ctx, r5_array *out, const r5_array *in, int dim)
{
	return r5_zrss(ctx, out, in, dim);
}

static r5_status op_sum(r5_ctx *ctx, r5_array *out, const r5_array *in, int unused)
{
	return r5_zsum(ctx, out, in);
}

/* circular shifts by table entry `which` (odd, negative, oversized; y only; fftshift) */
static const long shift_table[][4] = {{-3, 13, 40, 1}, {0, 5, 0, 0}, {128, 128, 0, -7}, {0, -9, 0, 3}};

static r5_status op_circshift(r5_ctx *ctx, r5_array *out, const r5_array *in, int which)
{
	long shifts[R5_DIMS] = {0};
	for (int d = 0; d < 4; d++)
		shifts[d] = shift_table[which][d];
	return r5_zcircshift(ctx, out, in, shifts);
}

/* box projections by table entry: non-negativity, an upper bound only, a box */
static const float box_table[][2] = {{0.0f, INFINITY}, {-INFINITY, 0.25f}, {-0.5f, 0.5f}};

static r5_status op_project_box(r5_ctx *ctx, r5_array *out, const r5_array *in, int which)
{
	return r5_zproject_box(ctx, box_table[which][0], box_table[which][1], out, in);
}

/* out = op(in) on ctx; host in, host result in *result. */
static r5_status run_array_op(r5_ctx *ctx, array_op op, int arg, const r5_array *in_host, const long out_dims[R5_DIMS],
			      r5_array **result)
{
	r5_array *in = NULL, *out = NULL, *poison = NULL;
	r5_status st = r5_array_to_work(ctx, in_host, &in);
	if (st == R5_OK)
		st = r5_array_alloc_host(out_dims, &poison);
	if (st == R5_OK) {
		for (long i = 0; i < r5_array_size(poison); i++)
			poison->data[i] = CMPLXF(NAN, NAN);
		st = r5_array_to_work(ctx, poison, &out);
	}
	if (st == R5_OK)
		st = op(ctx, out, in, arg);
	if (st == R5_OK)
		st = r5_array_to_host(ctx, out, result);
	r5_array_free(in);
	r5_array_free(out);
	r5_array_free(poison);
	return st;
}

static void array_case(struct pair *p, const char *name, array_op op, int arg, const long *dims4,
		       const long *out_dims4, double tol)
{
	long dims[R5_DIMS], out_dims[R5_DIMS];
	r5_dims_ones(dims);
	r5_dims_ones(out_dims);
	for (int d = 0; d < 4; d++)
		dims[d] = dims4[d], out_dims[d] = out_dims4[d];
	char shape[64];
	int used = snprintf(shape, sizeof shape, "0x%x ", arg);
	suite_shape(shape + used, sizeof shape - (size_t)used, dims4, 4);
	r5_array *in = NULL, *cpu = NULL, *gpu = NULL;
	if (r5_array_alloc_host(dims, &in) != R5_OK) {
		suite_fail(name, shape, r5_last_error());
		return;
	}
	for (long i = 0; i < r5_array_size(in); i++)
		in->data[i] = suite_crand();
	if (run_array_op(p->cpu, op, arg, in, out_dims, &cpu) != R5_OK ||
	    run_array_op(p->gpu, op, arg, in, out_dims, &gpu) != R5_OK)
		suite_fail(name, shape, r5_last_error());
	else
		suite_compare(name, shape, cpu->data, gpu->data, r5_array_size(cpu), 1, tol);
	r5_array_free(in);
	r5_array_free(cpu);
	r5_array_free(gpu);
}

/* --- the reduction slot on strided arrays (zreduce_md) --- */

static r5_status run_zreduce_md(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
				double complex *scalar)
{
	return b->zreduce_md(s, (r5_reduce_op)j->code, j->dims, j->str[0], buf[1] + j->offset[0], j->str[1],
			     buf[0] + j->offset[1]);
}

/* in (dims4 inside in_alloc4, every x_step-th x, at in_offset) reduced over the dims whose bit is
 * set in `reduce`, into out stored inside out_alloc4 (larger: a strided window; NULL: contiguous)
 * at out_offset.
 * NaN-poisoned out: elements outside the window must stay unwritten on both sides. */
static void reduce_md_case(struct pair *p, int op, const long *dims4, unsigned reduce, const long *in_alloc4,
			   long x_step, long in_offset, const long *out_alloc4, long out_offset)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.op = op == R5_REDUCE_SUM ? "zreduce_md sum" : "zreduce_md maxabs";
	j.run = run_zreduce_md, j.n_bufs = 2, j.out = 1, j.tol = TOL, j.code = op;
	long in_alloc[R5_DIMS], out_alloc[R5_DIMS];
	long out_dims[R5_DIMS];
	r5_dims_ones(j.dims);
	r5_dims_ones(in_alloc);
	for (int d = 0; d < 4; d++)
		j.dims[d] = dims4[d], in_alloc[d] = in_alloc4[d];
	r5_dims_copy(out_dims, j.dims);
	for (int d = 0; d < 4; d++)
		if (reduce >> d & 1)
			out_dims[d] = 1;
	r5_dims_copy(out_alloc, out_dims); /* NULL out_alloc4: out is contiguous */
	for (int d = 0; d < 4 && out_alloc4; d++)
		out_alloc[d] = out_alloc4[d];
	r5_dims_strides(j.str[1], in_alloc);
	j.str[1][0] = x_step;
	r5_dims_strides(j.str[0], out_alloc);
	for (int d = 0; d < 4; d++)
		if (reduce >> d & 1)
			j.str[0][d] = 0;
	j.offset[0] = out_offset, j.offset[1] = in_offset;
	j.len[0] = r5_dims_size(in_alloc), j.len[1] = r5_dims_size(out_alloc);
	j.init[0] = INIT_RANDOM, j.init[1] = INIT_NAN;
	j.full = r5_dims_equal(out_alloc, out_dims) && out_offset == 0;
	int used = snprintf(j.shape, sizeof j.shape, "0x%x%s ", reduce, j.full && x_step == 1 ? "" : " strided");
	suite_shape(j.shape + used, sizeof j.shape - (size_t)used, dims4, 4);
	suite_run_job(p, &j);
}

static void suite_reduce(struct pair *p)
{
	/* {dims, reduced dims}: per-thread path (few values or many outputs), per-block path, and
	 * split path (few outputs with many values each) */
	static const struct {
		long dims[4];
		unsigned reduce;
	} plain[] = {
		{{67, 45, 1, 7}, 0x8},        {{35, 27, 9, 2}, 0xA},    {{35, 27, 9, 2}, 0xF},
		{{256, 256, 1, 32}, 0xF},     {{1000003, 1, 1, 1}, 0x1}, {{512, 512, 1, 1}, 0x1},
		{{8, 8, 1, 65536}, 0x8},      {{256, 128, 1, 40}, 0x8}, {{100, 50, 1, 40}, 0x8},
		{{33, 17, 9, 3}, 0x0},
	};
	for (size_t c = 0; c < sizeof plain / sizeof plain[0]; c++)
		for (int op = 0; op < 2; op++)
			reduce_md_case(p, op, plain[c].dims, plain[c].reduce, plain[c].dims, 1, 0, NULL, 0);
	const long in_dims[4] = {45, 20, 3, 7}, in_alloc[4] = {96, 24, 3, 7};
	const long out_alloc[4] = {50, 24, 5, 1}, out_kept[4] = {50, 1, 5, 1};
	for (int op = 0; op < 2; op++) {
		reduce_md_case(p, op, in_dims, 0xA, in_alloc, 2, 3 + 96 * 2, out_alloc, 2 + 50 * 24);
		reduce_md_case(p, op, in_dims, 0xB, in_alloc, 2, 1, out_kept, 1);
	}
}

/* --- strided axpby (zaxpby_md) --- */

static r5_status run_zaxpby_md(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			       double complex *scalar)
{
	return b->zaxpby_md(s, j->dims, j->alpha, j->str[1], buf[0] + j->offset[1], j->beta, j->str[0],
			    buf[1] + j->offset[0]);
}

/* y (dims4, stored in y_alloc4 at y_offset: a window when larger) = alpha x + beta y, x with size 1
 * along the dims whose bit is clear in keep_x (broadcast), or transposed in x and y when
 * transpose01. y starts random, so elements outside the window must match too. */
static void axpby_md_case(struct pair *p, const long *dims4, const long *y_alloc4, long y_offset, unsigned keep_x,
			  int transpose01)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.op = "zaxpby_md", j.run = run_zaxpby_md, j.n_bufs = 2, j.out = 1, j.tol = TOL, j.full = 1;
	j.alpha = suite_crand(), j.beta = suite_crand();
	long x_dims[R5_DIMS], y_alloc[R5_DIMS];
	r5_dims_ones(j.dims);
	r5_dims_ones(y_alloc);
	for (int d = 0; d < 4; d++)
		j.dims[d] = dims4[d], y_alloc[d] = y_alloc4[d];
	r5_dims_copy(x_dims, j.dims);
	for (int d = 0; d < 4; d++)
		if (!(keep_x >> d & 1))
			x_dims[d] = 1;
	r5_dims_strides_bcast(j.str[1], x_dims);
	if (transpose01) { /* x[i, k] stored at k + dims1 * i */
		j.str[1][0] = x_dims[1];
		j.str[1][1] = 1;
	}
	r5_dims_strides(j.str[0], y_alloc);
	j.offset[0] = y_offset;
	j.len[0] = r5_dims_size(x_dims), j.len[1] = r5_dims_size(y_alloc);
	j.init[0] = j.init[1] = INIT_RANDOM;
	int used = snprintf(j.shape, sizeof j.shape, "x 0x%x%s%s ", keep_x, transpose01 ? " transposed" : "",
			    r5_dims_equal(y_alloc, j.dims) ? "" : " y strided");
	suite_shape(j.shape + used, sizeof j.shape - (size_t)used, dims4, 4);
	suite_run_job(p, &j);
}

static void suite_axpby_md(struct pair *p)
{
	const long coil[4] = {67, 45, 1, 7}, flat[4] = {1000003, 1, 1, 1}, sq[4] = {45, 67, 1, 1};
	const long window[4] = {40, 30, 1, 3}, window_alloc[4] = {50, 33, 2, 4};
	axpby_md_case(p, coil, coil, 0, 0xF, 0);
	axpby_md_case(p, coil, coil, 0, 0x3, 0); /* an image into every coil */
	axpby_md_case(p, coil, coil, 0, 0x8, 0); /* one value per coil */
	axpby_md_case(p, flat, flat, 0, 0x1, 0);
	axpby_md_case(p, sq, sq, 0, 0x3, 1);
	axpby_md_case(p, window, window_alloc, 3 + 50 * 2 + 50 * 33 * 2 * 1, 0xB, 0);
}

static void maxabs_case(struct pair *p, const long *dims4)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 4; d++)
		dims[d] = dims4[d];
	char shape[64];
	suite_shape(shape, sizeof shape, dims4, 4);
	r5_array *host = NULL, *on_cpu = NULL, *on_gpu = NULL;
	float cpu = NAN, gpu = NAN;
	r5_status st = r5_array_alloc_host(dims, &host);
	for (long i = 0; st == R5_OK && i < r5_array_size(host); i++)
		host->data[i] = suite_crand();
	if (st == R5_OK)
		st = r5_array_to_work(p->cpu, host, &on_cpu);
	if (st == R5_OK)
		st = r5_array_to_work(p->gpu, host, &on_gpu);
	if (st == R5_OK)
		st = r5_zmaxabs(p->cpu, on_cpu, &cpu);
	if (st == R5_OK)
		st = r5_zmaxabs(p->gpu, on_gpu, &gpu);
	if (st != R5_OK)
		suite_fail("r5_zmaxabs", shape, r5_last_error());
	else
		suite_row("r5_zmaxabs", shape, fabs((double)gpu - cpu) / cpu, fabs((double)gpu - cpu), TOL, !isnan(gpu), "");
	r5_array_free(host);
	r5_array_free(on_cpu);
	r5_array_free(on_gpu);
}

/* Writes the phantom to a temporary ISMRMRD file, reconstructs it on both contexts. */
static void pipeline_case(struct pair *p, const char *name, const struct r5_phantom_params *params,
			  const char *pipeline, double tol)
{
	char shape[64], path[] = "/tmp/r5_gpu_suite_XXXXXX";
	snprintf(shape, sizeof shape, "%dx%dx%d, %d coils, R%d", params->matrix[0], params->matrix[1],
		 params->matrix[2], params->n_coils, params->accel[0] * params->accel[1]);
	int fd = mkstemp(path);
	if (fd < 0) {
		suite_fail(name, shape, "cannot make a temporary file");
		return;
	}
	close(fd);
	r5_scan *scan = NULL;
	r5_image_set *cpu = NULL, *gpu = NULL;
	r5_recon_params rp = r5_recon_defaults;
	r5_status st = r5_recon_params_set(&rp, "pipeline", pipeline);
	if (st == R5_OK)
		st = r5_phantom_write(params, path, NULL);
	if (st == R5_OK)
		st = r5_scan_read_ismrmrd(path, NULL, NULL, &scan);
	if (st == R5_OK)
		st = r5_recon_run(p->cpu, scan, &rp, NULL, &cpu);
	if (st == R5_OK)
		st = r5_recon_run(p->gpu, scan, &rp, NULL, &gpu);
	if (st != R5_OK)
		suite_fail(name, shape, r5_last_error());
	else if (!r5_dims_equal(cpu->images->dims, gpu->images->dims))
		suite_fail(name, shape, "image dimensions differ");
	else if (strcmp(gpu->backend, g_suite.selftest ? "cpu" : "cuda") != 0)
		suite_fail(name, shape, "the GPU image set does not say it was made on cuda");
	else
		suite_compare(name, shape, cpu->images->data, gpu->images->data, r5_array_size(cpu->images), 1, tol);
	r5_image_set_free(cpu);
	r5_image_set_free(gpu);
	r5_scan_free(scan);
	unlink(path);
}

void suite_generic(struct pair *p)
{
	const long img[4] = {96, 80, 1, 6}, odd[4] = {35, 27, 9, 2}, big[4] = {256, 256, 1, 32};
	array_case(p, "r5_fft centred", op_fft, 0x3, img, img, TOL);
	array_case(p, "r5_ifft centred", op_ifft, 0x3, img, img, TOL);
	array_case(p, "r5_fft centred", op_fft, 0x7, odd, odd, TOL);
	array_case(p, "r5_ifft centred", op_ifft, 0x5, odd, odd, TOL);
	array_case(p, "r5_ifft centred", op_ifft, 0x3, big, big, TOL_LOOSE);
	const long summed[4] = {35, 1, 9, 1}, rss[4] = {96, 80, 1, 1};
	array_case(p, "r5_zsum", op_sum, 0, odd, summed, TOL);
	array_case(p, "r5_zrss", op_rss, R5_DIM_COIL, img, rss, TOL);
	const long rows[4] = {1, 37, 1, 5};
	array_case(p, "r5_zcircshift", op_circshift, 0, odd, odd, 0);
	array_case(p, "r5_zcircshift", op_circshift, 1, odd, odd, 0);
	array_case(p, "r5_zcircshift", op_circshift, 2, big, big, 0);
	array_case(p, "r5_zcircshift", op_circshift, 3, rows, rows, 0);
	for (int which = 0; which < 3; which++)
		array_case(p, "r5_zproject_box", op_project_box, which, odd, odd, 0);
	array_case(p, "r5_zproject_box", op_project_box, 2, big, big, 0);
	suite_reduce(p);
	suite_axpby_md(p);
	const long flat[4] = {1000003, 1, 1, 1};
	maxabs_case(p, odd);
	maxabs_case(p, flat);
	maxabs_case(p, big);

	struct r5_phantom_params p2 = r5_phantom_defaults_2d;
	p2.matrix[0] = p2.matrix[1] = 128;
	p2.fov_mm[0] = p2.fov_mm[1] = 200;
	p2.noise_sigma = 0.01;
	pipeline_case(p, "recon cartesian 2D", &p2, "cartesian", TOL);
	struct r5_phantom_params p3 = r5_phantom_defaults_3d;
	p3.matrix[0] = 48, p3.matrix[1] = 40, p3.matrix[2] = 32;
	p3.n_coils = 4;
	pipeline_case(p, "recon cartesian 3D", &p3, "cartesian", TOL);
	struct r5_phantom_params ps = p2;
	ps.sampling = R5_SAMPLING_UNIFORM;
	ps.accel[0] = 2;
	pipeline_case(p, "recon sense 2D (1e-3)", &ps, "sense", TOL_ITERATIVE);
}
