/* Operator property tests and the shared table of test operators (lintest.h). */
#include "lintest.h"

#include <math.h>
#include <stdlib.h>

#include "finite_diff.h"

r5_status r5_lintest_fill(r5_ctx *ctx, r5_array *a, int binary, unsigned *state)
{
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(a->dims, &host));
	for (long i = 0; i < r5_array_size(host); i++) {
		*state = *state * 1103515245u + 12345u;
		float re = (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
		*state = *state * 1103515245u + 12345u;
		float im = (float)((*state >> 8) & 0xffff) / 32768.0f - 1.0f;
		host->data[i] = binary ? (float)(re > 0) : re + I * im;
	}
	r5_status s = r5_array_copy(ctx, a, host);
	r5_array_free(host);
	return s;
}

/* A new work array of dims filled from *state. */
static r5_status random_work(r5_ctx *ctx, const long dims[R5_DIMS], unsigned *state, r5_array **out)
{
	R5_TRY(r5_array_alloc_work(ctx, dims, out));
	r5_status s = r5_lintest_fill(ctx, *out, 0, state);
	if (s != R5_OK) {
		r5_array_free(*out);
		*out = NULL;
	}
	return s;
}

typedef r5_status (*apply_fn)(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);

/* |a - b| / |b| */
static r5_status relative_diff(r5_ctx *ctx, const r5_array *a, const r5_array *b, r5_array *scratch, double *err)
{
	double diff = 0, ref = 0;
	R5_TRY(r5_array_copy(ctx, scratch, a));
	R5_TRY(r5_zaxpy(ctx, scratch, -1.0f, b));
	R5_TRY(r5_znorm(ctx, scratch, &diff));
	R5_TRY(r5_znorm(ctx, b, &ref));
	*err = diff / (ref + 1e-300);
	return R5_OK;
}

/* f applied in place to a copy of `in`, against `apart` (f applied out of place). */
static r5_status in_place_err(r5_ctx *ctx, r5_linop *op, apply_fn f, const r5_array *in, const r5_array *apart,
			      double *err)
{
	r5_array *z = NULL, *scratch = NULL;
	r5_status s = r5_array_to_work(ctx, in, &z);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, in->dims, &scratch);
	if (s == R5_OK)
		s = f(ctx, op, z, z);
	if (s == R5_OK)
		s = relative_diff(ctx, z, apart, scratch, err);
	r5_array_free(z);
	r5_array_free(scratch);
	return s;
}

static r5_status in_place_errors(r5_ctx *ctx, r5_linop *op, const r5_array *x, const r5_array *y,
				 const r5_array *ax, const r5_array *ahy, const r5_array *nx, double *worst)
{
	int square = r5_dims_equal(op->idims, op->odims);
	double e = 0;
	*worst = 0;
	if (square && (op->in_place & R5_LINOP_INPLACE_FORWARD)) {
		R5_TRY(in_place_err(ctx, op, r5_linop_forward, x, ax, &e));
		*worst = fmax(*worst, e);
	}
	if (square && (op->in_place & R5_LINOP_INPLACE_ADJOINT)) {
		R5_TRY(in_place_err(ctx, op, r5_linop_adjoint, y, ahy, &e));
		*worst = fmax(*worst, e);
	}
	if (op->in_place & R5_LINOP_INPLACE_NORMAL) {
		R5_TRY(in_place_err(ctx, op, r5_linop_normal, x, nx, &e));
		*worst = fmax(*worst, e);
	}
	return R5_OK;
}

r5_status r5_linop_property_test(r5_ctx *ctx, r5_linop *op, unsigned seed, r5_linop_errors *errors)
{
	r5_array *x = NULL, *y = NULL, *ax = NULL, *ahy = NULL, *ahax = NULL, *nx = NULL, *diff = NULL;
	unsigned state = seed;
	double complex d1 = 0, d2 = 0;
	double n_ax = 0, n_y = 0;
	r5_status s = random_work(ctx, op->idims, &state, &x);
	if (s == R5_OK)
		s = random_work(ctx, op->odims, &state, &y);
	r5_array **work[] = {&ax, &ahy, &ahax, &nx, &diff};
	for (int i = 0; i < 5 && s == R5_OK; i++)
		s = r5_array_alloc_work(ctx, i ? op->idims : op->odims, work[i]);
	if (s == R5_OK)
		s = r5_linop_forward(ctx, op, ax, x);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, op, ahy, y);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, op, ahax, ax);
	if (s == R5_OK)
		s = r5_linop_normal(ctx, op, nx, x);
	if (s == R5_OK)
		s = r5_zdot(ctx, ax, y, &d1);
	if (s == R5_OK)
		s = r5_zdot(ctx, x, ahy, &d2);
	if (s == R5_OK)
		s = r5_znorm(ctx, ax, &n_ax);
	if (s == R5_OK)
		s = r5_znorm(ctx, y, &n_y);
	if (s == R5_OK) {
		errors->adjoint = cabs(d1 - d2) / (n_ax * n_y + 1e-300);
		s = relative_diff(ctx, nx, ahax, diff, &errors->normal);
	}
	if (s == R5_OK)
		s = in_place_errors(ctx, op, x, y, ax, ahy, nx, &errors->in_place);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(ax);
	r5_array_free(ahy);
	r5_array_free(ahax);
	r5_array_free(nx);
	r5_array_free(diff);
	return s == R5_OK ? R5_OK : r5_error_context(s, "property test of operator %s", op->name);
}

r5_status r5_linop_adjoint_test(r5_ctx *ctx, r5_linop *op, unsigned seed, double *adjoint_err, double *normal_err)
{
	r5_linop_errors e;
	R5_TRY(r5_linop_property_test(ctx, op, seed, &e));
	if (adjoint_err)
		*adjoint_err = e.adjoint;
	if (normal_err)
		*normal_err = e.normal;
	return R5_OK;
}

r5_status r5_linop_apply_random(r5_ctx *ctx, r5_linop *op, int which, unsigned seed, r5_array **result)
{
	static const apply_fn fns[3] = {r5_linop_forward, r5_linop_adjoint, r5_linop_normal};
	r5_array *in = NULL, *out = NULL;
	unsigned state = seed;
	*result = NULL;
	if (which < 0 || which > 2)
		return r5_set_error(R5_EINVAL, "apply random: which %d (0 forward, 1 adjoint, 2 normal)", which);
	r5_status s = random_work(ctx, which == 1 ? op->odims : op->idims, &state, &in);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, which == 0 ? op->odims : op->idims, &out);
	if (s == R5_OK)
		s = fns[which](ctx, op, out, in);
	if (s == R5_OK)
		s = r5_array_to_host(ctx, out, result);
	r5_array_free(in);
	r5_array_free(out);
	return s;
}

void r5_lintest_kit_free(r5_lintest_kit *kit)
{
	for (int i = 0; i < kit->n; i++)
		r5_array_free(kit->arrays[i]);
	kit->n = 0;
}

/* --- the cases --- */

/* A random array (binary: a 0/1 mask) of dims d0..d4 (the rest 1), kept in the kit. */
static r5_status kit_array(r5_ctx *ctx, r5_lintest_kit *kit, long d0, long d1, long d2, long d3, long d4,
			   int binary, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = d0, dims[1] = d1, dims[2] = d2, dims[3] = d3, dims[4] = d4;
	*out = NULL;
	if (kit->n >= R5_LINTEST_MAX_ARRAYS)
		return r5_set_error(R5_EINTERNAL, "lintest kit: more than %d arrays", R5_LINTEST_MAX_ARRAYS);
	R5_TRY(r5_array_alloc_work(ctx, dims, out));
	kit->arrays[kit->n++] = *out;
	return r5_lintest_fill(ctx, *out, binary, &kit->state);
}

static void dims5(long dims[R5_DIMS], long d0, long d1, long d2, long d3, long d4)
{
	r5_dims_ones(dims);
	dims[0] = d0, dims[1] = d1, dims[2] = d2, dims[3] = d3, dims[4] = d4;
}

/* Releases what a failed build left and returns s. */
static r5_status drop2(r5_status s, r5_linop *a, r5_linop *b)
{
	r5_linop_free(a);
	r5_linop_free(b);
	return s;
}

static r5_status case_identity(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	dims5(d, 5, 4, 3, 1, 1);
	return r5_linop_identity(ctx, d, op);
}

static r5_status case_fft(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	dims5(d, 7, 6, 2, 1, 1);
	return r5_linop_fft(ctx, d, 3, op);
}

static r5_status case_sample(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	r5_array *mask = NULL;
	R5_TRY(kit_array(ctx, kit, 1, 5, 1, 1, 1, 1, &mask));
	dims5(d, 6, 5, 1, 3, 1);
	return r5_linop_sample(ctx, d, mask, op);
}

static r5_status case_fft_sample(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	r5_array *mask = NULL;
	R5_TRY(kit_array(ctx, kit, 1, 5, 4, 1, 1, 1, &mask));
	dims5(d, 6, 5, 4, 3, 1);
	return r5_linop_fft_sample(ctx, d, R5_FLAG(1) | R5_FLAG(2), mask, op);
}

static r5_status case_maps(r5_ctx *ctx, r5_lintest_kit *kit, long n_maps, r5_linop **op)
{
	r5_array *maps = NULL;
	R5_TRY(kit_array(ctx, kit, 6, 5, 2, 4, n_maps, 0, &maps));
	return r5_linop_maps(ctx, maps, op);
}

static r5_status case_maps1(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_maps(ctx, kit, 1, op);
}

static r5_status case_maps2(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_maps(ctx, kit, 2, op);
}

/* SENSE on maps [nx ny nz coils n_maps], a random mask over y, z; grouped when group > 0. */
static r5_status case_sense_op(r5_ctx *ctx, r5_lintest_kit *kit, long nx, long ny, long nz, long coils, long n_maps,
			       long group, r5_linop **op)
{
	r5_array *maps = NULL, *mask = NULL;
	R5_TRY(kit_array(ctx, kit, nx, ny, nz, coils, n_maps, 0, &maps));
	R5_TRY(kit_array(ctx, kit, 1, ny, nz, 1, 1, 1, &mask));
	unsigned long flags = R5_FLAG(1) | (nz > 1 ? R5_FLAG(2) : 0);
	if (group > 0)
		return r5_linop_sense_grouped(ctx, maps, mask, flags, group, NULL, NULL, op);
	return r5_linop_sense(ctx, maps, mask, flags, op);
}

static r5_status case_sense2d(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_sense_op(ctx, kit, 8, 6, 1, 4, 1, 0, op);
}

static r5_status case_sense3d(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_sense_op(ctx, kit, 6, 5, 4, 3, 2, 0, op);
}

static r5_status case_grouped1(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_sense_op(ctx, kit, 6, 5, 2, 5, 1, 2, op); /* groups of 2, 2, 1 coils */
}

static r5_status case_grouped2(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	return case_sense_op(ctx, kit, 6, 5, 2, 5, 2, 3, op); /* groups of 3, 2 coils */
}

static r5_status case_scale(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *f = NULL;
	R5_TRY(case_fft(ctx, kit, &f));
	return r5_linop_scale(ctx, 0.7f - 1.3f * I, f, op);
}

static r5_status case_sum(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	r5_linop *f = NULL, *m = NULL;
	dims5(d, 6, 5, 1, 3, 1);
	R5_TRY(r5_linop_fft(ctx, d, 1, &f));
	r5_status s = case_sample(ctx, kit, &m);
	return s == R5_OK ? r5_linop_sum(ctx, f, m, op) : drop2(s, f, NULL);
}

/* [fft; identity] along x: both parts are strided views of the output */
static r5_status case_vstack_x(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	r5_linop *f = NULL, *id = NULL;
	dims5(d, 5, 4, 2, 1, 1);
	R5_TRY(r5_linop_fft(ctx, d, 3, &f));
	r5_status s = r5_linop_identity(ctx, d, &id);
	return s == R5_OK ? r5_linop_vstack(ctx, R5_DIM_X, f, id, op) : drop2(s, f, NULL);
}

/* [E; 0.5 I] along the coil dimension: Tikhonov-regularised SENSE as one operator */
static r5_status case_vstack_reg(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *e = NULL, *id = NULL, *half = NULL;
	R5_TRY(case_sense_op(ctx, kit, 6, 5, 1, 3, 1, 0, &e));
	r5_status s = r5_linop_identity(ctx, e->idims, &id);
	if (s == R5_OK)
		s = r5_linop_scale(ctx, 0.5f, id, &half);
	return s == R5_OK ? r5_linop_vstack(ctx, R5_DIM_COIL, e, half, op) : drop2(s, e, NULL);
}

/* [pad(6x3x2 -> 6x8x2), i pad(6x5x2 -> 6x8x2)] along y: strided parts of the input */
static r5_status case_hstack_y(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long da[R5_DIMS], db[R5_DIMS], dout[R5_DIMS];
	r5_linop *a = NULL, *b = NULL, *ib = NULL;
	dims5(da, 6, 3, 2, 1, 1);
	dims5(db, 6, 5, 2, 1, 1);
	dims5(dout, 6, 8, 2, 1, 1);
	R5_TRY(r5_linop_resize(ctx, da, dout, &a));
	r5_status s = r5_linop_resize(ctx, db, dout, &b);
	if (s == R5_OK)
		s = r5_linop_scale(ctx, I, b, &ib);
	return s == R5_OK ? r5_linop_hstack(ctx, R5_DIM_Y, a, ib, op) : drop2(s, a, NULL);
}

/* [fft, sample] along the coil dimension (contiguous parts) */
static r5_status case_hstack_coil(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	r5_linop *f = NULL, *m = NULL;
	r5_array *mask = NULL;
	dims5(d, 6, 5, 1, 1, 1);
	R5_TRY(kit_array(ctx, kit, 1, 5, 1, 1, 1, 1, &mask));
	R5_TRY(r5_linop_fft(ctx, d, 3, &f));
	r5_status s = r5_linop_sample(ctx, d, mask, &m);
	return s == R5_OK ? r5_linop_hstack(ctx, R5_DIM_COIL, f, m, op) : drop2(s, f, NULL);
}

static r5_status case_adjoint_maps(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *m = NULL;
	R5_TRY(case_maps(ctx, kit, 2, &m));
	return r5_linop_adjoint_of(ctx, m, op);
}

static r5_status case_adjoint_sense(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *e = NULL;
	R5_TRY(case_sense_op(ctx, kit, 6, 5, 4, 3, 1, 0, &e));
	return r5_linop_adjoint_of(ctx, e, op);
}

static r5_status case_resize(r5_ctx *ctx, const long in5[5], const long out5[5], r5_linop **op)
{
	long di[R5_DIMS], dout[R5_DIMS];
	dims5(di, in5[0], in5[1], in5[2], in5[3], in5[4]);
	dims5(dout, out5[0], out5[1], out5[2], out5[3], out5[4]);
	return r5_linop_resize(ctx, di, dout, op);
}

static r5_status case_pad(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	const long a[5] = {5, 4, 3, 1, 1}, b[5] = {8, 7, 3, 1, 1};
	return case_resize(ctx, a, b, op);
}

static r5_status case_crop(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	const long a[5] = {8, 7, 3, 1, 1}, b[5] = {5, 4, 3, 1, 1};
	return case_resize(ctx, a, b, op);
}

static r5_status case_resize_mixed(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	const long a[5] = {5, 8, 3, 1, 1}, b[5] = {8, 5, 3, 1, 1};
	return case_resize(ctx, a, b, op);
}

/* (F_z + (2 - i) I) [F_xy; I] along coils: a chain of a stack and a sum of a scale */
static r5_status case_chain_mix(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS], d2[R5_DIMS];
	r5_linop *f = NULL, *id = NULL, *stack = NULL, *fz = NULL, *id2 = NULL, *scaled = NULL, *sum = NULL;
	dims5(d, 6, 5, 2, 1, 1);
	dims5(d2, 6, 5, 2, 2, 1);
	R5_TRY(r5_linop_fft(ctx, d, 3, &f));
	r5_status s = r5_linop_identity(ctx, d, &id);
	if (s != R5_OK)
		return drop2(s, f, NULL);
	R5_TRY(r5_linop_vstack(ctx, R5_DIM_COIL, f, id, &stack));
	s = r5_linop_fft(ctx, d2, R5_FLAG(2), &fz);
	if (s == R5_OK)
		s = r5_linop_identity(ctx, d2, &id2);
	if (s == R5_OK)
		s = r5_linop_scale(ctx, 2.0f - 1.0f * I, id2, &scaled);
	else
		r5_linop_free(id2);
	if (s == R5_OK)
		s = r5_linop_sum(ctx, fz, scaled, &sum);
	else
		r5_linop_free(fz);
	return s == R5_OK ? r5_linop_chain(ctx, stack, sum, op) : drop2(s, stack, NULL);
}

/* E^H E as the chain of E and (E)^H: one operator held by two composites */
static r5_status case_shared_chain(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *e = NULL, *eh = NULL;
	R5_TRY(case_sense_op(ctx, kit, 8, 6, 1, 4, 1, 0, &e));
	r5_status s = r5_linop_adjoint_of(ctx, r5_linop_ref(e), &eh);
	return s == R5_OK ? r5_linop_chain(ctx, e, eh, op) : drop2(s, e, NULL);
}

/* F + F with one F */
static r5_status case_shared_sum(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *f = NULL;
	R5_TRY(case_fft(ctx, kit, &f));
	return r5_linop_sum(ctx, r5_linop_ref(f), f, op);
}

static r5_status case_adjoint_hstack(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	r5_linop *h = NULL;
	R5_TRY(case_hstack_y(ctx, kit, &h));
	return r5_linop_adjoint_of(ctx, h, op);
}

static r5_status case_circshift(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS], shifts[R5_DIMS] = {0};
	dims5(d, 7, 6, 3, 1, 1);
	shifts[0] = 2, shifts[1] = -3, shifts[2] = 4;
	return r5_linop_circshift(ctx, d, shifts, op);
}

/* TV's differences over x, y and time (odd sizes), stacked along the map dim */
static r5_status case_finite_diff(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS];
	dims5(d, 7, 6, 3, 1, 1);
	d[R5_DIM_TIME] = 3;
	return r5_linop_finite_diff(ctx, d, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(R5_DIM_TIME), R5_DIM_MAP, op);
}

/* the FFT shift theorem's pieces: S F S^-1 with S a half-size shift (a chain of three) */
static r5_status case_shift_fft(r5_ctx *ctx, r5_lintest_kit *kit, r5_linop **op)
{
	long d[R5_DIMS], half[R5_DIMS] = {0};
	r5_linop *s1 = NULL, *f = NULL, *s2 = NULL, *sf = NULL;
	dims5(d, 8, 5, 1, 2, 1);
	half[0] = 4, half[1] = 2;
	R5_TRY(r5_linop_circshift(ctx, d, half, &s1));
	r5_status s = r5_linop_fft(ctx, d, 3, &f);
	if (s != R5_OK)
		return drop2(s, s1, NULL);
	R5_TRY(r5_linop_chain(ctx, s1, f, &sf));
	half[0] = -4, half[1] = -2;
	s = r5_linop_circshift(ctx, d, half, &s2);
	return s == R5_OK ? r5_linop_chain(ctx, sf, s2, op) : drop2(s, sf, NULL);
}

const r5_lintest_case r5_lintest_cases[] = {
	{"identity", case_identity},
	{"fft xy (odd x)", case_fft},
	{"sample", case_sample},
	{"fft-sample yz", case_fft_sample},
	{"maps, 1 set", case_maps1},
	{"maps, 2 sets", case_maps2},
	{"sense 2D", case_sense2d},
	{"sense 3D, 2 sets", case_sense3d},
	{"sense-grouped 2+2+1", case_grouped1},
	{"sense-grouped 2 sets", case_grouped2},
	{"scale(fft)", case_scale},
	{"sum fft+sample", case_sum},
	{"vstack x (strided)", case_vstack_x},
	{"vstack [E; I/2]", case_vstack_reg},
	{"hstack y (strided)", case_hstack_y},
	{"hstack coil", case_hstack_coil},
	{"adjoint-of maps", case_adjoint_maps},
	{"adjoint-of sense", case_adjoint_sense},
	{"zero-pad", case_pad},
	{"crop", case_crop},
	{"resize pad x crop y", case_resize_mixed},
	{"chain(vstack, sum)", case_chain_mix},
	{"chain(E, E^H) shared", case_shared_chain},
	{"sum(F, F) shared", case_shared_sum},
	{"adjoint-of hstack", case_adjoint_hstack},
	{"circshift", case_circshift},
	{"chain(shift, fft, shift)", case_shift_fft},
	{"finite differences x, y, time", case_finite_diff},
};
const int r5_lintest_n_cases = (int)(sizeof r5_lintest_cases / sizeof r5_lintest_cases[0]);
