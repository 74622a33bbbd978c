/* r5_array allocation, copies between residencies, and the checked wrappers over the back
 * end (array.h). Every wrapper names the operation and the shapes in its error message. */
/* MAP_ANONYMOUS is not in POSIX.1-2008 */
#define _DEFAULT_SOURCE
#include "array.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <math.h>

#include "wavelet_math.h"

static r5_status check_dims(const long dims[R5_DIMS], long *n, const char *what)
{
	*n = r5_dims_size(dims);
	char text[128];
	if (*n <= 0)
		return r5_set_error(R5_ERANGE, "%s: invalid dimensions %s", what, r5_dims_format(text, sizeof text, dims));
	if ((unsigned long)*n > (unsigned long)R5_ARRAY_MAX_BYTES / sizeof(float complex))
		return r5_set_error(R5_ERANGE, "%s: dimensions %s need %.1f GiB, over the %ld GiB array limit", what,
				    r5_dims_format(text, sizeof text, dims),
				    (double)*n * sizeof(float complex) / (1 << 30), R5_ARRAY_MAX_BYTES >> 30);
	return R5_OK;
}

static r5_status new_descriptor(const long dims[R5_DIMS], r5_residency where, r5_ctx *ctx, r5_array **out)
{
	r5_array *a = calloc(1, sizeof *a);
	if (!a)
		return r5_set_error(R5_ENOMEM, "array descriptor");
	r5_dims_copy(a->dims, dims);
	r5_dims_strides(a->strides, dims);
	a->where = where;
	a->ctx = ctx;
	*out = a;
	return R5_OK;
}

r5_status r5_array_alloc(r5_ctx *ctx, r5_residency where, const long dims[R5_DIMS], r5_array **out)
{
	long n;
	*out = NULL;
	R5_TRY(check_dims(dims, &n, "array allocation"));
	size_t bytes = (size_t)n * sizeof(float complex);
	r5_array *a = NULL;
	R5_TRY(new_descriptor(dims, where, where == R5_DEVICE ? ctx : NULL, &a));
	if (where == R5_HOST) {
		size_t rounded = (bytes + 63) / 64 * 64;
		a->data = aligned_alloc(64, rounded);
		if (!a->data) {
			free(a);
			return r5_set_error(R5_ENOMEM, "host allocation of %.1f MiB failed", bytes / 1048576.0);
		}
	} else {
		if (!ctx || r5_ctx_residency(ctx) != R5_DEVICE) {
			free(a);
			return r5_set_error(R5_EINVAL, "device array requested on a context without a device");
		}
		void *ptr = NULL;
		r5_status st = r5_ctx_backend(ctx)->alloc(r5_ctx_state(ctx), &ptr, bytes);
		if (st != R5_OK) {
			free(a);
			return st;
		}
		a->data = ptr;
	}
	a->owns = 1;
	*out = a;
	return R5_OK;
}

r5_status r5_array_alloc_host(const long dims[R5_DIMS], r5_array **out)
{
	return r5_array_alloc(NULL, R5_HOST, dims, out);
}

r5_status r5_array_alloc_work(r5_ctx *ctx, const long dims[R5_DIMS], r5_array **out)
{
	return r5_array_alloc(ctx, r5_ctx_residency(ctx), dims, out);
}

r5_status r5_array_zeros(r5_ctx *ctx, r5_residency where, const long dims[R5_DIMS], r5_array **out)
{
	R5_TRY(r5_array_alloc(ctx, where, dims, out));
	if (where == R5_HOST) {
		memset((*out)->data, 0, (size_t)r5_array_size(*out) * sizeof(float complex));
		return R5_OK;
	}
	r5_status st = r5_zfill(ctx, *out, 0);
	if (st != R5_OK) {
		r5_array_free(*out);
		*out = NULL;
	}
	return st;
}

r5_status r5_array_view(r5_residency where, r5_ctx *ctx, const long dims[R5_DIMS], float complex *data,
			r5_array **out)
{
	long n;
	*out = NULL;
	R5_TRY(check_dims(dims, &n, "array view"));
	R5_TRY(new_descriptor(dims, where, ctx, out));
	(*out)->data = data;
	(*out)->owns = 0;
	return R5_OK;
}

/* Anonymous mappings are zero and cost nothing until a page is written. Huge pages are turned
 * off for the mapping: with transparent huge pages one written line would make 2 MiB resident,
 * and callers that count written pages (the scan builder's memory reservation) would undercount. */
r5_status r5_array_zeros_lazy(const long dims[R5_DIMS], r5_array **out)
{
	long n;
	*out = NULL;
	R5_TRY(check_dims(dims, &n, "array allocation"));
	size_t bytes = (size_t)n * sizeof(float complex);
	void *ptr = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ptr == MAP_FAILED)
		return r5_set_error(R5_ENOMEM, "host mapping of %.1f MiB failed", (double)bytes / 1048576.0);
#ifdef MADV_NOHUGEPAGE
	madvise(ptr, bytes, MADV_NOHUGEPAGE);
#endif
	r5_status st = new_descriptor(dims, R5_HOST, NULL, out);
	if (st != R5_OK) {
		munmap(ptr, bytes);
		return st;
	}
	(*out)->data = ptr;
	(*out)->owns = R5_ARRAY_OWNS_MAPPING;
	return R5_OK;
}

void r5_array_free(r5_array *a)
{
	if (!a)
		return;
	if (a->owns == R5_ARRAY_OWNS_MAPPING && a->data)
		munmap(a->data, (size_t)r5_array_size(a) * sizeof(float complex));
	else if (a->owns && a->data) {
		if (a->where == R5_HOST)
			free(a->data);
		else
			r5_ctx_backend(a->ctx)->free(r5_ctx_state(a->ctx), a->data);
	}
	free(a);
}

r5_array r5_array_view_strided(const r5_array *base, const long dims[R5_DIMS], const long strides[R5_DIMS],
			       long offset)
{
	r5_array v;
	memset(&v, 0, sizeof v);
	r5_dims_copy(v.dims, dims);
	r5_dims_copy(v.strides, strides ? strides : base->strides);
	v.data = base->data + offset;
	v.where = base->where;
	v.ctx = base->ctx;
	v.owns = 0;
	return v;
}

long r5_array_size(const r5_array *a)
{
	return r5_dims_size(a->dims);
}

int r5_array_is_contiguous(const r5_array *a)
{
	long s = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		if (a->dims[d] > 1 && a->strides[d] != s)
			return 0;
		s *= a->dims[d];
	}
	return 1;
}

/* --- checks shared by the wrappers --- */

/* The array exists and lives where the context computes (any strides). */
static r5_status check_where(r5_ctx *ctx, const r5_array *a, const char *op, const char *name)
{
	if (!a || !a->data)
		return r5_set_error(R5_EINVAL, "%s: %s is NULL", op, name);
	if (a->where != r5_ctx_residency(ctx))
		return r5_set_error(R5_EINVAL, "%s: %s lives on the %s but the %s back end computes on the %s", op,
				    name, a->where == R5_HOST ? "host" : "device", r5_ctx_backend_name(ctx),
				    r5_ctx_residency(ctx) == R5_HOST ? "host" : "device");
	return R5_OK;
}

/* ... and is contiguous. */
static r5_status check_work(r5_ctx *ctx, const r5_array *a, const char *op, const char *name)
{
	R5_TRY(check_where(ctx, a, op, name));
	if (!r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "%s: %s is not contiguous", op, name);
	return R5_OK;
}

static r5_status check_same(const r5_array *a, const r5_array *b, const char *op)
{
	if (!r5_dims_equal(a->dims, b->dims)) {
		char ta[128], tb[128];
		return r5_set_error(R5_EINVAL, "%s: shapes differ, %s vs %s", op, r5_dims_format(ta, sizeof ta, a->dims),
				    r5_dims_format(tb, sizeof tb, b->dims));
	}
	return R5_OK;
}

/* First and last element offsets an array's descriptor reaches (any strides, negative too). */
static void array_extent(const r5_array *a, long *lo, long *hi)
{
	*lo = *hi = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		long reach = (a->dims[d] - 1) * a->strides[d];
		if (reach < 0)
			*lo += reach;
		else
			*hi += reach;
	}
}

/* The memory two arrays reach overlaps (by their extents: a conservative test for strided ones). */
static int arrays_overlap(const r5_array *a, const r5_array *b)
{
	long a_lo, a_hi, b_lo, b_hi;
	array_extent(a, &a_lo, &a_hi);
	array_extent(b, &b_lo, &b_hi);
	uintptr_t pa = (uintptr_t)a->data, pb = (uintptr_t)b->data, size = sizeof(float complex);
	uintptr_t a_first = pa + (uintptr_t)a_lo * size, a_last = pa + (uintptr_t)a_hi * size;
	uintptr_t b_first = pb + (uintptr_t)b_lo * size, b_last = pb + (uintptr_t)b_hi * size;
	return a_first <= b_last && b_first <= a_last;
}

/* An output written element by element: no stride 0 along a dimension larger than 1 (two
 * elements would be one, written at once by two threads). */
static r5_status check_written(const r5_array *out, const char *op, const char *name)
{
	for (int d = 0; d < R5_DIMS; d++)
		if (out->dims[d] > 1 && out->strides[d] == 0) {
			char text[128];
			return r5_set_error(R5_EINVAL, "%s: %s %s has stride 0 along dimension %d", op, name,
					    r5_dims_format(text, sizeof text, out->dims), d);
		}
	return R5_OK;
}

/* An element-wise input may be the output itself (same memory, shape and strides), never a
 * part of it or a broadcast over it. */
static r5_status check_alias(const r5_array *out, const r5_array *in, const char *op, const char *name)
{
	int same = out->data == in->data && r5_dims_equal(out->dims, in->dims);
	for (int d = 0; d < R5_DIMS && same; d++)
		same = out->dims[d] == 1 || out->strides[d] == in->strides[d];
	if (same || !arrays_overlap(out, in))
		return R5_OK;
	char to[128], ti[128];
	return r5_set_error(R5_EINVAL, "%s: %s %s overlaps the output %s without being it", op, name,
			    r5_dims_format(ti, sizeof ti, in->dims), r5_dims_format(to, sizeof to, out->dims));
}

/* in's dims must equal out's or be 1 (broadcast) */
static r5_status bcast_strides(const r5_array *out, const r5_array *in, long strides[R5_DIMS], const char *op,
			       const char *name)
{
	for (int d = 0; d < R5_DIMS; d++) {
		if (in->dims[d] != out->dims[d] && in->dims[d] != 1) {
			char to[128], ti[128];
			return r5_set_error(R5_EINVAL, "%s: %s shape %s does not broadcast to %s", op, name,
					    r5_dims_format(ti, sizeof ti, in->dims), r5_dims_format(to, sizeof to, out->dims));
		}
		strides[d] = in->dims[d] == 1 ? 0 : in->strides[d];
	}
	return R5_OK;
}

#define BK(ctx) r5_ctx_backend(ctx)
#define ST(ctx) r5_ctx_state(ctx)

r5_status r5_array_copy(r5_ctx *ctx, r5_array *dst, const r5_array *src)
{
	R5_TRY(check_same(dst, src, "array copy"));
	if (!r5_array_is_contiguous(dst) || !r5_array_is_contiguous(src))
		return r5_set_error(R5_EINVAL, "array copy: strided arrays are copied with r5_zresize_centered");
	size_t bytes = (size_t)r5_array_size(src) * sizeof(float complex);
	if (dst->where == R5_HOST && src->where == R5_HOST) {
		if (dst->data != src->data)
			memmove(dst->data, src->data, bytes);
		return R5_OK;
	}
	if (!ctx || r5_ctx_residency(ctx) != R5_DEVICE)
		return r5_set_error(R5_EINVAL, "array copy: a device array needs a device context");
	if (dst->where == R5_DEVICE && src->where == R5_HOST)
		return BK(ctx)->upload(ST(ctx), dst->data, src->data, bytes);
	if (dst->where == R5_HOST && src->where == R5_DEVICE)
		return BK(ctx)->download(ST(ctx), dst->data, src->data, bytes);
	return BK(ctx)->copy(ST(ctx), dst->data, src->data, bytes);
}

r5_status r5_array_host_copy(r5_array *dst, const r5_array *src)
{
	R5_TRY(check_same(dst, src, "host copy"));
	if (dst->where != R5_HOST || src->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "host copy: both arrays must be host arrays (%s to %s)",
				    src->where == R5_HOST ? "host" : "device", dst->where == R5_HOST ? "host" : "device");
	long n0 = dst->dims[0], lines = r5_array_size(dst) / (n0 > 0 ? n0 : 1);
	int runs = dst->strides[0] == 1 && src->strides[0] == 1;
	for (long line = 0; line < lines && n0 > 0; line++) {
		long rest = line, od = 0, os = 0;
		for (int d = 1; d < R5_DIMS; d++) {
			long i = rest % dst->dims[d];
			rest /= dst->dims[d];
			od += i * dst->strides[d];
			os += i * src->strides[d];
		}
		if (runs)
			memmove(dst->data + od, src->data + os, sizeof(float complex) * (size_t)n0);
		else
			for (long i = 0; i < n0; i++)
				dst->data[od + i * dst->strides[0]] = src->data[os + i * src->strides[0]];
	}
	return R5_OK;
}

r5_status r5_array_gather_to_work(r5_ctx *ctx, const r5_array *host_view, r5_array **out)
{
	r5_array *staged = NULL;
	*out = NULL;
	R5_TRY(r5_array_alloc_host(host_view->dims, &staged));
	r5_status s = r5_array_host_copy(staged, host_view);
	if (s == R5_OK)
		s = r5_array_to_work(ctx, staged, out);
	r5_array_free(staged);
	return s;
}

static r5_status copy_to(r5_ctx *ctx, r5_residency where, const r5_array *src, r5_array **out)
{
	R5_TRY(r5_array_alloc(ctx, where, src->dims, out));
	r5_status st = r5_array_copy(ctx, *out, src);
	if (st != R5_OK) {
		r5_array_free(*out);
		*out = NULL;
	}
	return st;
}

r5_status r5_array_to_work(r5_ctx *ctx, const r5_array *src, r5_array **out)
{
	return copy_to(ctx, r5_ctx_residency(ctx), src, out);
}

r5_status r5_array_to_host(r5_ctx *ctx, const r5_array *src, r5_array **out)
{
	return copy_to(ctx, R5_HOST, src, out);
}

/* --- element-wise wrappers --- */

r5_status r5_zfill(r5_ctx *ctx, r5_array *x, float complex value)
{
	R5_TRY(check_work(ctx, x, "fill", "x"));
	return BK(ctx)->zfill(ST(ctx), r5_array_size(x), x->data, value);
}

r5_status r5_zscale(r5_ctx *ctx, r5_array *x, float complex alpha)
{
	R5_TRY(check_work(ctx, x, "scale", "x"));
	return BK(ctx)->zscale(ST(ctx), r5_array_size(x), x->data, alpha);
}

r5_status r5_zaxpby(r5_ctx *ctx, float complex alpha, const r5_array *x, float complex beta, r5_array *y)
{
	R5_TRY(check_where(ctx, x, "axpby", "x"));
	R5_TRY(check_where(ctx, y, "axpby", "y"));
	R5_TRY(check_alias(y, x, "axpby", "x"));
	if (r5_dims_equal(x->dims, y->dims) && r5_array_is_contiguous(x) && r5_array_is_contiguous(y))
		return BK(ctx)->zaxpby(ST(ctx), r5_array_size(x), alpha, x->data, beta, y->data);
	long xs[R5_DIMS];
	R5_TRY(bcast_strides(y, x, xs, "axpby", "x"));
	R5_TRY(check_written(y, "axpby", "y"));
	return BK(ctx)->zaxpby_md(ST(ctx), y->dims, alpha, xs, x->data, beta, y->strides, y->data);
}

r5_status r5_zaxpy(r5_ctx *ctx, r5_array *y, float complex alpha, const r5_array *x)
{
	return r5_zaxpby(ctx, alpha, x, 1.0f, y);
}

r5_status r5_zunary(r5_ctx *ctx, r5_unary_op op, r5_array *out, const r5_array *in)
{
	R5_TRY(check_work(ctx, out, "unary", "out"));
	R5_TRY(check_work(ctx, in, "unary", "in"));
	R5_TRY(check_same(out, in, "unary"));
	return BK(ctx)->zunary(ST(ctx), op, r5_array_size(in), out->data, in->data);
}

r5_status r5_zsoftthresh(r5_ctx *ctx, float lambda, r5_array *out, const r5_array *in)
{
	R5_TRY(check_work(ctx, out, "soft threshold", "out"));
	R5_TRY(check_work(ctx, in, "soft threshold", "in"));
	R5_TRY(check_same(out, in, "soft threshold"));
	return BK(ctx)->zsoftthresh(ST(ctx), r5_array_size(in), lambda, out->data, in->data);
}

r5_status r5_zproject_box(r5_ctx *ctx, float lo, float hi, r5_array *out, const r5_array *in)
{
	R5_TRY(check_work(ctx, out, "box projection", "out"));
	R5_TRY(check_work(ctx, in, "box projection", "in"));
	R5_TRY(check_same(out, in, "box projection"));
	char td[128];
	if (isnan(lo) || isnan(hi) || lo > hi)
		return r5_set_error(R5_EINVAL, "box projection of %s: bounds [%g, %g] are not an interval",
				    r5_dims_format(td, sizeof td, in->dims), lo, hi);
	if (out->data != in->data && arrays_overlap(out, in))
		return r5_set_error(R5_EINVAL, "box projection of %s: out partly overlaps in (the same array is fine)",
				    r5_dims_format(td, sizeof td, in->dims));
	return BK(ctx)->zclamp(ST(ctx), r5_array_size(in), lo, hi, out->data, in->data);
}

r5_status r5_zdot(r5_ctx *ctx, const r5_array *x, const r5_array *y, double complex *result)
{
	R5_TRY(check_work(ctx, x, "dot", "x"));
	R5_TRY(check_work(ctx, y, "dot", "y"));
	R5_TRY(check_same(x, y, "dot"));
	return BK(ctx)->zdot(ST(ctx), r5_array_size(x), x->data, y->data, result);
}

r5_status r5_znorm(r5_ctx *ctx, const r5_array *x, double *result)
{
	R5_TRY(check_work(ctx, x, "norm", "x"));
	double sq = 0;
	R5_TRY(BK(ctx)->znorm2sq(ST(ctx), r5_array_size(x), x->data, &sq));
	*result = sqrt(sq);
	return R5_OK;
}

static r5_status zmul_strided(r5_ctx *ctx, r5_array *out, const r5_array *in1, const r5_array *in2, int flags,
			      const char *op)
{
	long s1[R5_DIMS], s2[R5_DIMS];
	if (flags & ~(R5_ZMUL_CONJ2 | R5_ZMUL_ACCUM))
		return r5_set_error(R5_EINVAL, "%s: unknown flags 0x%x", op, (unsigned)flags);
	R5_TRY(check_where(ctx, out, op, "out"));
	R5_TRY(check_where(ctx, in1, op, "in1"));
	R5_TRY(check_where(ctx, in2, op, "in2"));
	R5_TRY(bcast_strides(out, in1, s1, op, "in1"));
	R5_TRY(bcast_strides(out, in2, s2, op, "in2"));
	R5_TRY(check_written(out, op, "out"));
	R5_TRY(check_alias(out, in1, op, "in1"));
	R5_TRY(check_alias(out, in2, op, "in2"));
	return BK(ctx)->zmul_md(ST(ctx), out->dims, out->strides, out->data, s1, in1->data, s2, in2->data, flags);
}

r5_status r5_zmul(r5_ctx *ctx, r5_array *out, const r5_array *in1, const r5_array *in2, int flags)
{
	return zmul_strided(ctx, out, in1, in2, flags, "multiply");
}

r5_status r5_zfmac(r5_ctx *ctx, r5_array *out, const r5_array *in1, const r5_array *in2, int flags)
{
	return zmul_strided(ctx, out, in1, in2, flags | R5_ZMUL_ACCUM, "multiply-accumulate");
}

/* Output strides of a reduction of in into out: out's stride where the dims agree, 0 where out
 * has size 1 and in does not. Sets *reduced when some dimension is reduced. */
static r5_status reduce_strides(const r5_array *out, const r5_array *in, long out_str[R5_DIMS], int *reduced,
				const char *op)
{
	char to[128], ti[128];
	*reduced = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		if (out->dims[d] == in->dims[d]) {
			out_str[d] = out->strides[d];
			if (in->dims[d] > 1 && out_str[d] == 0)
				return r5_set_error(R5_EINVAL, "%s into %s: out has stride 0 along dimension %d", op,
						    r5_dims_format(to, sizeof to, out->dims), d);
		} else if (out->dims[d] == 1) {
			out_str[d] = 0;
			*reduced = 1;
		} else {
			return r5_set_error(R5_EINVAL, "%s: output shape %s is not a reduction of %s", op,
					    r5_dims_format(to, sizeof to, out->dims), r5_dims_format(ti, sizeof ti, in->dims));
		}
	}
	return R5_OK;
}

r5_status r5_zreduce(r5_ctx *ctx, r5_reduce_op op, r5_array *out, const r5_array *in)
{
	const char *name = op == R5_REDUCE_SUM ? "sum" : op == R5_REDUCE_MAXABS ? "max |x|" : NULL;
	if (!name)
		return r5_set_error(R5_EINVAL, "reduce: unknown operation %d", (int)op);
	R5_TRY(check_where(ctx, out, name, "out"));
	R5_TRY(check_where(ctx, in, name, "in"));
	long out_str[R5_DIMS];
	int reduced;
	R5_TRY(reduce_strides(out, in, out_str, &reduced, name));
	/* nothing reduced and out == in: each element is read, then written in place */
	int same = !reduced && out->data == in->data;
	for (int d = 0; d < R5_DIMS && same; d++)
		same = in->dims[d] == 1 || out_str[d] == in->strides[d];
	if (!same && arrays_overlap(out, in)) {
		char to[128], ti[128];
		return r5_set_error(R5_EINVAL, "%s of %s into %s: out overlaps in", name,
				    r5_dims_format(ti, sizeof ti, in->dims), r5_dims_format(to, sizeof to, out->dims));
	}
	return BK(ctx)->zreduce_md(ST(ctx), op, in->dims, out_str, out->data, in->strides, in->data);
}

r5_status r5_zsum(r5_ctx *ctx, r5_array *out, const r5_array *in)
{
	return r5_zreduce(ctx, R5_REDUCE_SUM, out, in);
}

r5_status r5_zmaxabs(r5_ctx *ctx, const r5_array *x, float *result)
{
	R5_TRY(check_where(ctx, x, "max |x|", "x"));
	long one[R5_DIMS];
	r5_dims_ones(one);
	r5_array *max = NULL;
	R5_TRY(r5_array_alloc_work(ctx, one, &max));
	float complex value = 0;
	r5_status st = r5_zreduce(ctx, R5_REDUCE_MAXABS, max, x);
	if (st == R5_OK && max->where == R5_HOST)
		value = max->data[0];
	else if (st == R5_OK)
		st = BK(ctx)->download(ST(ctx), &value, max->data, sizeof value);
	r5_array_free(max);
	*result = crealf(value);
	return st;
}

/* Shifts written as "(1 -3 0 ...)" up to the last dimension larger than 1. */
static const char *format_shifts(char *text, size_t size, const long dims[R5_DIMS], const long shifts[R5_DIMS])
{
	int last = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] != 1 || shifts[d] != 0)
			last = d;
	size_t used = (size_t)snprintf(text, size, "(");
	for (int d = 0; d <= last && used < size; d++)
		used += (size_t)snprintf(text + used, size - used, d ? " %ld" : "%ld", shifts[d]);
	if (used < size)
		snprintf(text + used, size - used, ")");
	return text;
}

r5_status r5_zcircshift(r5_ctx *ctx, r5_array *out, const r5_array *in, const long shifts[R5_DIMS])
{
	R5_TRY(check_work(ctx, out, "circular shift", "out"));
	R5_TRY(check_work(ctx, in, "circular shift", "in"));
	R5_TRY(check_same(out, in, "circular shift"));
	char td[128], ts[160];
	if (!shifts)
		return r5_set_error(R5_EINVAL, "circular shift of %s: no shifts", r5_dims_format(td, sizeof td, in->dims));
	if (arrays_overlap(out, in))
		return r5_set_error(R5_EINVAL,
				    "circular shift of %s by %s: out and in overlap (the shift is not in place; use a "
				    "separate output)",
				    r5_dims_format(td, sizeof td, in->dims), format_shifts(ts, sizeof ts, in->dims, shifts));
	long normalised[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++) {
		long n = in->dims[d], s = shifts[d] % n;
		normalised[d] = s < 0 ? s + n : s;
	}
	return BK(ctx)->zcircshift(ST(ctx), in->dims, normalised, out->data, in->data);
}

r5_status r5_zresize_centered(r5_ctx *ctx, r5_array *out, const r5_array *in)
{
	if (out->where != r5_ctx_residency(ctx) || in->where != r5_ctx_residency(ctx))
		return r5_set_error(R5_EINVAL, "resize: arrays must live where the %s back end computes",
				    r5_ctx_backend_name(ctx));
	long dims[R5_DIMS];
	long out_off = 0, in_off = 0;
	int grows = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		long no = out->dims[d], ni = in->dims[d];
		dims[d] = no < ni ? no : ni;
		if (no > ni) {
			grows = 1;
			out_off += (no / 2 - ni / 2) * out->strides[d];
		} else {
			in_off += (ni / 2 - no / 2) * in->strides[d];
		}
	}
	if (grows) {
		if (!r5_array_is_contiguous(out))
			return r5_set_error(R5_EINVAL, "resize: a zero-padded output must be contiguous");
		R5_TRY(r5_zfill(ctx, out, 0));
	}
	return BK(ctx)->zcopy_md(ST(ctx), dims, out->strides, out->data + out_off, in->strides, in->data + in_off);
}

r5_status r5_zrss(r5_ctx *ctx, r5_array *out, const r5_array *in, int dim)
{
	if (dim < 0 || dim >= R5_DIMS)
		return r5_set_error(R5_EINVAL, "rss: dimension %d out of range", dim);
	long want[R5_DIMS];
	r5_dims_copy(want, in->dims);
	want[dim] = 1;
	if (!r5_dims_equal(want, out->dims))
		return r5_set_error(R5_EINVAL, "rss: output must be the input with dimension %d of size 1", dim);
	r5_array *sq = NULL;
	R5_TRY(r5_array_alloc_work(ctx, in->dims, &sq));
	r5_status st = r5_zunary(ctx, R5_UNARY_ABS2, sq, in);
	if (st == R5_OK)
		st = r5_zsum(ctx, out, sq);
	if (st == R5_OK)
		st = r5_zunary(ctx, R5_UNARY_SQRT_RE, out, out);
	r5_array_free(sq);
	return st;
}

r5_status r5_zgemm(r5_ctx *ctx, int trans_a, long m, long n, long k, float complex alpha, const float complex *a,
		   long lda, const float complex *b, long ldb, float complex beta, float complex *c, long ldc)
{
	long a_rows = trans_a ? k : m;
	if (m < 0 || n < 0 || k < 0 || (trans_a != 0 && trans_a != 1))
		return r5_set_error(R5_EINVAL, "zgemm: m %ld, n %ld, k %ld, trans_a %d", m, n, k, trans_a);
	if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (k > 1 ? k : 1) || ldc < (m > 1 ? m : 1))
		return r5_set_error(R5_EINVAL, "zgemm: leading dimensions %ld, %ld, %ld too small for %ldx%ld x %ldx%ld",
				    lda, ldb, ldc, m, k, k, n);
	if (m == 0 || n == 0)
		return R5_OK;
	if (!a || !b || !c)
		return r5_set_error(R5_EINVAL, "zgemm: no matrix");
	return r5_ctx_backend(ctx)->zgemm(r5_ctx_state(ctx), trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

r5_status r5_zheev_batched(r5_ctx *ctx, long batch, int n, float complex *matrices, float *eigenvalues)
{
	if (batch < 0 || n < 1 || n > 1024)
		return r5_set_error(R5_EINVAL, "zheev: %ld matrices of %d x %d (1..1024)", batch, n, n);
	if (batch == 0)
		return R5_OK;
	if (!matrices || !eigenvalues)
		return r5_set_error(R5_EINVAL, "zheev: no matrices");
	return r5_ctx_backend(ctx)->zheev_batched(r5_ctx_state(ctx), batch, n, matrices, eigenvalues);
}

r5_status r5_zheev_top_batched(r5_ctx *ctx, long batch, int n, int k, float complex *matrices, float *eigenvalues)
{
	if (batch < 0 || n < 1 || n > 1024 || k < 1 || k > n)
		return r5_set_error(R5_EINVAL, "zheev: %ld matrices of %d x %d, %d vectors (1..n)", batch, n, n, k);
	if (batch == 0)
		return R5_OK;
	if (!matrices || !eigenvalues)
		return r5_set_error(R5_EINVAL, "zheev: no matrices");
	return r5_ctx_backend(ctx)->zheev_top_batched(r5_ctx_state(ctx), batch, n, k, matrices, eigenvalues);
}

r5_status r5_zcopy_strided(r5_ctx *ctx, const long dims[R5_DIMS], const long out_strides[R5_DIMS], float complex *out,
			   const long in_strides[R5_DIMS], const float complex *in)
{
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] < 1 || (dims[d] > 1 && out_strides[d] == 0))
			return r5_set_error(R5_EINVAL, "strided copy: dimension %d has size %ld and output stride %ld", d,
					    dims[d], out_strides[d]);
	if (!out || !in)
		return r5_set_error(R5_EINVAL, "strided copy: no data");
	return r5_ctx_backend(ctx)->zcopy_md(r5_ctx_state(ctx), dims, out_strides, out, in_strides, in);
}

r5_status r5_ctx_sync(r5_ctx *ctx)
{
	return r5_ctx_backend(ctx)->sync(r5_ctx_state(ctx));
}

/* --- wavelet step (recon/core/wavelet_math.h) --- */

r5_status r5_zwavelet_step(r5_ctx *ctx, int kind, int inverse, int dim, r5_array *out, const r5_array *in)
{
	const char *op = inverse ? "wavelet synthesis step" : "wavelet analysis step";
	R5_TRY(check_where(ctx, out, op, "out"));
	R5_TRY(check_where(ctx, in, op, "in"));
	R5_TRY(check_same(out, in, op));
	R5_TRY(check_written(out, op, "out"));
	char td[128];
	if (kind < 0 || kind >= R5_WAVELET_N_KINDS)
		return r5_set_error(R5_EINVAL, "%s: unknown wavelet kind %d", op, kind);
	if (dim < 0 || dim >= R5_DIMS)
		return r5_set_error(R5_EINVAL, "%s of %s: dimension %d is not 0..%d", op,
				    r5_dims_format(td, sizeof td, in->dims), dim, R5_DIMS - 1);
	if ((in->dims[dim] & ~1L) < r5_wavelet_length(kind))
		return r5_set_error(R5_EINVAL, "%s of %s along dimension %d: %ld samples, the filter needs %d", op,
				    r5_dims_format(td, sizeof td, in->dims), dim, in->dims[dim],
				    r5_wavelet_length(kind));
	for (int d = 0; d < R5_DIMS; d++)
		if (in->dims[d] > 1 && in->strides[d] != out->strides[d])
			return r5_set_error(R5_EINVAL, "%s of %s: out and in strides differ along dimension %d", op,
					    r5_dims_format(td, sizeof td, in->dims), d);
	if (arrays_overlap(out, in))
		return r5_set_error(R5_EINVAL, "%s of %s: out and in overlap (the step is not in place)", op,
				    r5_dims_format(td, sizeof td, in->dims));
	return BK(ctx)->zwavelet_step(ST(ctx), kind, inverse, dim, in->dims, in->strides, out->data, in->data);
}
