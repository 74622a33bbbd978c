/* GPU suite: element-wise slots, reductions and the strided (_md) slots, CPU vs GPU; then every
 * operator of recon/linop's shared case table (lintest.h) on the GPU context: its properties
 * (adjoint identity, normal = A^H A, in place) and its results against the CPU context's. */
#include <stdio.h>
#include <string.h>

#include "recon/core/dims.h"
#include "recon/linop/lintest.h"

#include "gpu_suite.h"

void suite_shape(char *text, size_t size, const long *dims, int rank)
{
	size_t used = 0;
	used += (size_t)snprintf(text, size, "[");
	for (int d = 0; d < rank && used < size; d++)
		used += (size_t)snprintf(text + used, size - used, d ? " %ld" : "%ld", dims[d]);
	if (used < size)
		snprintf(text + used, size - used, "]");
}

/* --- element-wise --- */

static r5_status run_zfill(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			   double complex *scalar)
{
	return b->zfill(s, j->n, buf[0], j->alpha);
}

static r5_status run_zscale(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			    double complex *scalar)
{
	return b->zscale(s, j->n, buf[0], j->alpha);
}

static r5_status run_zaxpby(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			    double complex *scalar)
{
	return b->zaxpby(s, j->n, j->alpha, buf[0], j->beta, buf[1]);
}

static r5_status run_zunary(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			    double complex *scalar)
{
	return b->zunary(s, (r5_unary_op)j->code, j->n, buf[1], buf[0]);
}

static r5_status run_zsoftthresh(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
				 double complex *scalar)
{
	return b->zsoftthresh(s, j->n, j->lambda, buf[1], buf[0]);
}

static r5_status run_zdot(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			  double complex *scalar)
{
	return b->zdot(s, j->n, buf[0], buf[1], scalar);
}

static r5_status run_znorm2sq(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			      double complex *scalar)
{
	double r = -1;
	r5_status st = b->znorm2sq(s, j->n, buf[0], &r);
	*scalar = r;
	return st;
}

static void elementwise_n(struct pair *p, long n)
{
	struct job j;
	static const char *const unary_names[] = {"zunary abs", "zunary abs2", "zunary sqrt_re", "zunary conj",
						  "zunary recip"};
	memset(&j, 0, sizeof j);
	j.n = n;
	j.tol = TOL;
	j.full = 1;
	snprintf(j.shape, sizeof j.shape, "n=%ld", n);
	j.alpha = suite_crand();
	j.beta = suite_crand();

	j.op = "zfill", j.run = run_zfill, j.n_bufs = 1, j.len[0] = n, j.init[0] = INIT_NAN, j.out = 0;
	suite_run_job(p, &j);
	j.op = "zscale", j.run = run_zscale, j.init[0] = INIT_RANDOM;
	suite_run_job(p, &j);
	j.op = "zaxpby", j.run = run_zaxpby, j.n_bufs = 2, j.len[1] = n, j.init[1] = INIT_RANDOM, j.out = 1;
	suite_run_job(p, &j);
	j.init[1] = INIT_NAN;
	for (int op = 0; op < 5; op++) {
		j.op = unary_names[op], j.run = run_zunary, j.code = op;
		suite_run_job(p, &j);
	}
	j.op = "zsoftthresh", j.run = run_zsoftthresh, j.lambda = 0.6f;
	suite_run_job(p, &j);
	j.op = "zdot", j.run = run_zdot, j.scalar = 1, j.init[1] = INIT_RANDOM;
	suite_run_job(p, &j);
	j.op = "znorm2sq", j.run = run_znorm2sq, j.n_bufs = 1, j.out = 0;
	suite_run_job(p, &j);
}

void suite_elementwise(struct pair *p)
{
	const long sizes[] = {1, 257, 1000003, 4194304 + 17};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		elementwise_n(p, sizes[i]);
}

/* --- strided --- */

/* Buffer length an array with these strides needs, plus its offset. */
static long extent(const long dims[R5_DIMS], const long str[R5_DIMS], long offset)
{
	long last = offset;
	for (int d = 0; d < R5_DIMS; d++)
		last += (dims[d] - 1) * str[d];
	return last + 1;
}

static r5_status run_zmul_md(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			     double complex *scalar)
{
	return b->zmul_md(s, j->dims, j->str[0], buf[0] + j->offset[0], j->str[1], buf[1] + j->offset[1], j->str[2],
			  buf[2] + j->offset[2], j->flags);
}

static r5_status run_zcopy_md(const struct r5_backend *b, void *s, float complex **buf, const struct job *j,
			      double complex *scalar)
{
	return b->zcopy_md(s, j->dims, j->str[0], buf[0] + j->offset[0], j->str[1], buf[1] + j->offset[1]);
}

/* zmul_md of out[dims] = in1 * in2 where in_k has size 1 along the dims whose bit is clear in
 * keep_k (broadcast, stride 0); out strides are contiguous over `out_dims` (>= dims, so a
 * strided out with gaps when larger) at offset out_offset. */
static void zmul_case(struct pair *p, const char *op, const long *dims4, const long *out_dims4, long out_offset,
		      unsigned keep1, unsigned keep2, int flags)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.op = op, j.run = run_zmul_md, j.n_bufs = 3, j.out = 0, j.tol = TOL, j.flags = flags;
	long out_dims[R5_DIMS], in1_dims[R5_DIMS], in2_dims[R5_DIMS];
	r5_dims_ones(j.dims);
	r5_dims_ones(out_dims);
	for (int d = 0; d < 4; d++)
		j.dims[d] = dims4[d], out_dims[d] = out_dims4[d];
	r5_dims_copy(in1_dims, j.dims);
	r5_dims_copy(in2_dims, j.dims);
	for (int d = 0; d < 4; d++) {
		if (!(keep1 >> d & 1))
			in1_dims[d] = 1;
		if (!(keep2 >> d & 1))
			in2_dims[d] = 1;
	}
	r5_dims_strides(j.str[0], out_dims);
	r5_dims_strides_bcast(j.str[1], in1_dims);
	r5_dims_strides_bcast(j.str[2], in2_dims);
	j.offset[0] = out_offset;
	j.len[0] = r5_dims_size(out_dims) + out_offset;
	j.len[1] = extent(j.dims, j.str[1], 0);
	j.len[2] = extent(j.dims, j.str[2], 0);
	j.init[0] = (flags & R5_ZMUL_ACCUM) ? INIT_RANDOM : INIT_NAN;
	j.full = r5_dims_equal(out_dims, j.dims) && out_offset == 0;
	suite_shape(j.shape, sizeof j.shape, dims4, 4);
	suite_run_job(p, &j);
}

static void zcopy_case(struct pair *p, const char *op, const long *dims4, const long *out_dims4, long out_offset,
		       const long *in_dims4, long in_offset, int transpose01)
{
	struct job j;
	memset(&j, 0, sizeof j);
	j.op = op, j.run = run_zcopy_md, j.n_bufs = 2, j.out = 0, j.tol = TOL;
	long out_dims[R5_DIMS], in_dims[R5_DIMS];
	r5_dims_ones(j.dims);
	r5_dims_ones(out_dims);
	r5_dims_ones(in_dims);
	for (int d = 0; d < 4; d++)
		j.dims[d] = dims4[d], out_dims[d] = out_dims4[d], in_dims[d] = in_dims4[d];
	r5_dims_strides(j.str[0], out_dims);
	r5_dims_strides(j.str[1], in_dims);
	if (transpose01) { /* out[x, y] = in[y, x]: in is stored [dims1, dims0] */
		j.str[1][0] = in_dims[0];
		j.str[1][1] = 1;
	}
	j.offset[0] = out_offset, j.offset[1] = in_offset;
	j.len[0] = r5_dims_size(out_dims);
	j.len[1] = r5_dims_size(in_dims);
	j.init[0] = INIT_NAN, j.init[1] = INIT_RANDOM;
	j.full = r5_dims_equal(out_dims, j.dims);
	suite_shape(j.shape, sizeof j.shape, dims4, 4);
	suite_run_job(p, &j);
}

void suite_strided(struct pair *p)
{
	const long coil[4] = {67, 45, 1, 7}, vol[4] = {33, 17, 9, 3}, big[4] = {256, 256, 1, 32};
	zmul_case(p, "zmul_md expand", coil, coil, 0, 0x3, 0xF, 0);          /* image x coil maps */
	zmul_case(p, "zmul_md conj", coil, coil, 0, 0xF, 0xF, R5_ZMUL_CONJ2);
	zmul_case(p, "zmul_md conj+accum", vol, vol, 0, 0xF, 0x7, R5_ZMUL_CONJ2 | R5_ZMUL_ACCUM);
	zmul_case(p, "zmul_md bcast y,coil", vol, vol, 0, 0x5, 0xB, 0);
	zmul_case(p, "zmul_md expand", big, big, 0, 0x3, 0xF, 0);
	const long padded[4] = {71, 50, 1, 7};
	zmul_case(p, "zmul_md into strided", coil, padded, 3 + 71 * 2, 0xF, 0x3, 0);

	const long crop[4] = {20, 13, 9, 3}, vol_pad[4] = {40, 24, 11, 3};
	zcopy_case(p, "zcopy_md crop", crop, crop, 0, vol, 6 + 33 * 2 + 33 * 17 * 0, 0);
	zcopy_case(p, "zcopy_md pad", vol, vol_pad, 3 + 40 * 3 + 40 * 24 * 1, vol, 0, 0);
	const long sq[4] = {45, 67, 1, 7}, sq_in[4] = {67, 45, 1, 7};
	zcopy_case(p, "zcopy_md transpose", sq, sq, 0, sq_in, 0, 1);
	zcopy_case(p, "zcopy_md plain", big, big, 0, big, 0, 0);
	/* reductions (zreduce_md): suite_generic.c */
}

/* --- operators: the shared case table of recon/linop/lintest.c on the GPU context --- */

/* Each operator of the table, built on both contexts from the same seed: the adjoint identity,
 * normal = A^H A and in place = apart on the GPU context, then forward, adjoint and normal of
 * the same random input against the CPU context's. */
static void linop_case(struct pair *p, const r5_lintest_case *c, unsigned seed)
{
	r5_lintest_kit kit_cpu = {.state = seed}, kit_gpu = {.state = seed};
	r5_linop *op_cpu = NULL, *op_gpu = NULL;
	char shape[64];
	snprintf(shape, sizeof shape, "%.30s", c->name);
	if (c->build(p->cpu, &kit_cpu, &op_cpu) != R5_OK || c->build(p->gpu, &kit_gpu, &op_gpu) != R5_OK) {
		suite_fail("linop build", shape, r5_last_error());
	} else {
		r5_linop_errors e;
		if (r5_linop_property_test(p->gpu, op_gpu, seed + 1, &e) != R5_OK) {
			suite_fail("linop properties", shape, r5_last_error());
		} else {
			suite_row("linop adjoint", shape, e.adjoint, 0, TOL, 1, "<Ax,y> vs <x,A^H y>");
			suite_row("linop normal", shape, e.normal, 0, TOL, 1, "vs A^H(Ax)");
			suite_row("linop in place", shape, e.in_place, 0, TOL, 1, "");
		}
		static const char *const names[3] = {"linop forward", "linop adjoint cpu/gpu", "linop normal cpu/gpu"};
		for (int which = 0; which < 3; which++) {
			r5_array *cpu = NULL, *gpu = NULL;
			if (r5_linop_apply_random(p->cpu, op_cpu, which, seed + 2, &cpu) != R5_OK ||
			    r5_linop_apply_random(p->gpu, op_gpu, which, seed + 2, &gpu) != R5_OK)
				suite_fail(names[which], shape, r5_last_error());
			else
				suite_compare(names[which], shape, cpu->data, gpu->data, r5_array_size(cpu), 1, TOL);
			r5_array_free(cpu);
			r5_array_free(gpu);
		}
	}
	r5_linop_free(op_cpu);
	r5_linop_free(op_gpu);
	r5_lintest_kit_free(&kit_cpu);
	r5_lintest_kit_free(&kit_gpu);
}

void suite_linops(struct pair *p)
{
	unsigned seed = (unsigned)(suite_uniform() * 1e9) + 1000000000u;
	for (int i = 0; i < r5_lintest_n_cases; i++)
		linop_case(p, &r5_lintest_cases[i], seed + 16u * (unsigned)i);
}
