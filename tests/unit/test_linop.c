/* Operators and CG. Every operator of recon/linop and composites of them (the shared case table
 * of recon/linop/lintest.c, which the GPU suite runs on a CUDA context too): adjoint identity
 * <A x, y> = <x, A^H y>, normal = A^H A, in-place = apart where declared, and no scratch growth
 * on a second application. Then each composite's forward and adjoint against its definition
 * (its operands' own applications; host loops for resize and circshift), which the properties
 * cannot tell from a wrong but consistent pair. Then the aliasing rule, reference counts, shape
 * errors naming the operator, the bytes the SENSE operator holds (384x384x256x12 built without
 * its data), and CG on a small SPD system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "recon/linop/lintest.h"
#include "recon/solve/cg.h"

#include "cpu_fixture.h"

#define TOL_PROPERTY 1e-5 /* single precision; measured worst: see test_properties' output */

static unsigned fill_state = 99;

static r5_array *random_work(const long dims[R5_DIMS], int binary)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, binary, &fill_state), R5_OK);
	return a;
}

static void test_properties(void **state)
{
	(void)state;
	double worst_adj = 0, worst_nrm = 0, worst_inplace = 0;
	for (int i = 0; i < r5_lintest_n_cases; i++) {
		const r5_lintest_case *c = &r5_lintest_cases[i];
		r5_lintest_kit kit = {.state = 1000u + (unsigned)i};
		r5_linop *op = NULL;
		r5_linop_errors e = {1, 1, 1}, again = {1, 1, 1};
		if (c->build(ctx, &kit, &op) != R5_OK)
			fail_msg("%s: %s", c->name, r5_last_error());
		if (r5_linop_property_test(ctx, op, 7, &e) != R5_OK)
			fail_msg("%s: %s", c->name, r5_last_error());
		long held = r5_linop_bytes_held(op);
		assert_int_equal(r5_linop_property_test(ctx, op, 8, &again), R5_OK);
		print_message("%-26s %-30s adjoint %.1e normal %.1e in-place %.1e held %ld B\n", c->name, op->name,
			      e.adjoint, e.normal, e.in_place, held);
		if (!(e.adjoint < TOL_PROPERTY && e.normal < TOL_PROPERTY && e.in_place < TOL_PROPERTY))
			fail_msg("%s: errors adjoint %.2e normal %.2e in-place %.2e", c->name, e.adjoint, e.normal,
				 e.in_place);
		assert_true(again.adjoint < TOL_PROPERTY && again.normal < TOL_PROPERTY);
		assert_int_equal(r5_linop_bytes_held(op), held); /* scratch kept, never per call */
		worst_adj = fmax(worst_adj, e.adjoint);
		worst_nrm = fmax(worst_nrm, e.normal);
		worst_inplace = fmax(worst_inplace, e.in_place);
		r5_linop_free(op);
		r5_lintest_kit_free(&kit);
	}
	print_message("%d operators: worst adjoint %.2e, normal %.2e, in-place %.2e (tolerance %.0e)\n",
		      r5_lintest_n_cases, worst_adj, worst_nrm, worst_inplace, TOL_PROPERTY);
}

/* --- definitions: the properties above hold for any consistent forward/adjoint pair (a scale
 * by conj(alpha) both ways, stack parts swapped both ways, a shift or a centre wrong both ways
 * all pass them), so each composite's forward and adjoint are compared here with its
 * definition: from its operands' own forward and adjoint, and for resize and circshift with a
 * brute-force host loop. Inputs are made on the host from a fixed seed and copied to work
 * arrays; results come back through r5_array_to_host; nothing else touches a work array's
 * memory, so the same checks run on any back end. --- */

#define TOL_DEFINITION 1e-6 /* relative; measured: see test_definitions' output */

static double worst_definition;
static unsigned definition_state; /* its own inputs: a failure here changes no later test's */

static r5_array *random_input(const long dims[R5_DIMS], int binary)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, binary, &definition_state), R5_OK);
	return a;
}

static void dims4(long dims[R5_DIMS], long d0, long d1, long d2, long d3)
{
	r5_dims_ones(dims);
	dims[0] = d0, dims[1] = d1, dims[2] = d2, dims[3] = d3;
}

/* op (its adjoint when `adjoint`) applied to in, into a new work array */
static r5_array *apply_new(r5_linop *op, int adjoint, const r5_array *in)
{
	r5_array *out = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, adjoint ? op->idims : op->odims, &out), R5_OK);
	r5_status s = adjoint ? r5_linop_adjoint(ctx, op, out, in) : r5_linop_forward(ctx, op, out, in);
	if (s != R5_OK)
		fail_msg("%s: %s", op->name, r5_last_error());
	return out;
}

static r5_array *host_of(const r5_array *a)
{
	r5_array *h = NULL;
	assert_int_equal(r5_array_to_host(ctx, a, &h), R5_OK);
	return h;
}

static r5_array *work_of(const r5_array *host)
{
	r5_array *w = NULL;
	assert_int_equal(r5_array_to_work(ctx, host, &w), R5_OK);
	return w;
}

/* y += alpha x, then frees x */
static void add_into(r5_array *y, float complex alpha, r5_array *x)
{
	assert_int_equal(r5_zaxpy(ctx, y, alpha, x), R5_OK);
	r5_array_free(x);
}

/* |got - want| / |want| (either residency), recorded against TOL_DEFINITION; frees both */
static void expect_definition(const char *what, r5_array *got, r5_array *want)
{
	r5_array *g = host_of(got), *w = host_of(want);
	assert_true(r5_dims_equal(g->dims, w->dims));
	double diff = 0, ref = 0;
	for (long i = 0; i < r5_array_size(w); i++) {
		diff += pow(cabs((double complex)g->data[i] - w->data[i]), 2);
		ref += pow(cabs((double complex)w->data[i]), 2);
	}
	assert_true(ref > 0);
	double e = sqrt(diff / ref);
	print_message("  %-54s %.1e\n", what, e);
	if (!(e < TOL_DEFINITION))
		fail_msg("%s: relative error %.2e against its definition", what, e);
	worst_definition = fmax(worst_definition, e);
	r5_array_free(g);
	r5_array_free(w);
	r5_array_free(got);
	r5_array_free(want);
}

/* Element offset of multi-index idx in host array a (a's strides: no layout assumed). */
static long host_offset(const r5_array *a, const long idx[R5_DIMS])
{
	long off = 0;
	for (int k = 0; k < R5_DIMS; k++)
		off += idx[k] * a->strides[k];
	return off;
}

/* The multi-index of the i-th element of dims, x fastest. */
static void host_index(long i, const long dims[R5_DIMS], long idx[R5_DIMS])
{
	for (int k = 0; k < R5_DIMS; k++) {
		idx[k] = i % dims[k];
		i /= dims[k];
	}
}

static r5_array *host_new(const long dims[R5_DIMS])
{
	r5_array *h = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &h), R5_OK);
	return h;
}

/* The part of work array whole from index start along dim, of dims part_dims, as a new work
 * array (by a host loop). */
static r5_array *part_of(const r5_array *whole, int dim, long start, const long part_dims[R5_DIMS])
{
	r5_array *w = host_of(whole), *part = host_new(part_dims), *out = NULL;
	long idx[R5_DIMS];
	for (long i = 0; i < r5_array_size(part); i++) {
		host_index(i, part_dims, idx);
		long at = host_offset(part, idx);
		idx[dim] += start;
		part->data[at] = w->data[host_offset(w, idx)];
	}
	out = work_of(part);
	r5_array_free(w);
	r5_array_free(part);
	return out;
}

/* [a; b] along dim (work arrays, freed) as a new host array, by a host loop */
static r5_array *joined(int dim, r5_array *a, r5_array *b)
{
	r5_array *ha = host_of(a), *hb = host_of(b);
	long dims[R5_DIMS], idx[R5_DIMS];
	r5_dims_copy(dims, ha->dims);
	dims[dim] += hb->dims[dim];
	r5_array *whole = host_new(dims);
	for (long i = 0; i < r5_array_size(whole); i++) {
		host_index(i, dims, idx);
		long at = host_offset(whole, idx);
		int second = idx[dim] >= ha->dims[dim];
		if (second)
			idx[dim] -= ha->dims[dim];
		whole->data[at] = second ? hb->data[host_offset(hb, idx)] : ha->data[host_offset(ha, idx)];
	}
	r5_array_free(ha);
	r5_array_free(hb);
	r5_array_free(a);
	r5_array_free(b);
	return whole;
}

/* Zero-pad / crop about the centre by a host loop, r5_zresize_centered's convention: the
 * centre of a dimension of n is index n / 2 (the FFT's centre), so out[o] = in[o - no/2 + ni/2]
 * where that lies in in, else 0. */
static r5_array *host_resize(const r5_array *in_work, const long odims[R5_DIMS])
{
	r5_array *in = host_of(in_work), *out = host_new(odims);
	long idx[R5_DIMS];
	for (long i = 0; i < r5_array_size(out); i++) {
		host_index(i, odims, idx);
		long at = host_offset(out, idx);
		int inside = 1;
		for (int k = 0; k < R5_DIMS; k++) {
			idx[k] += in->dims[k] / 2 - odims[k] / 2;
			inside &= idx[k] >= 0 && idx[k] < in->dims[k];
		}
		out->data[at] = inside ? in->data[host_offset(in, idx)] : 0;
	}
	r5_array_free(in);
	return out;
}

/* out[(i + sign shifts) mod dims] = in[i] by a host loop (linop.h's convention) */
static r5_array *host_shift(const r5_array *in_work, const long shifts[R5_DIMS], int sign)
{
	r5_array *in = host_of(in_work), *out = host_new(in->dims);
	long idx[R5_DIMS];
	for (long i = 0; i < r5_array_size(in); i++) {
		host_index(i, in->dims, idx);
		float complex v = in->data[host_offset(in, idx)];
		for (int k = 0; k < R5_DIMS; k++)
			idx[k] = ((idx[k] + sign * shifts[k]) % in->dims[k] + in->dims[k]) % in->dims[k];
		out->data[host_offset(out, idx)] = v;
	}
	r5_array_free(in);
	return out;
}

/* C = A + B and C = alpha A on an FFT (not self-adjoint) and a sampling mask */
static void check_sum_scale(void)
{
	long d[R5_DIMS], dm[R5_DIMS];
	dims4(d, 6, 5, 1, 3);
	dims4(dm, 1, 5, 1, 1);
	const float complex alpha = 0.7f - 1.3f * I;
	r5_array *mask = random_input(dm, 1);
	r5_linop *f = NULL, *m = NULL, *sum = NULL, *scaled = NULL;
	assert_int_equal(r5_linop_fft(ctx, d, 3, &f), R5_OK);
	assert_int_equal(r5_linop_sample(ctx, d, mask, &m), R5_OK);
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(m), &sum), R5_OK);
	assert_int_equal(r5_linop_scale(ctx, alpha, r5_linop_ref(f), &scaled), R5_OK);
	r5_array *x = random_input(d, 0), *y = random_input(d, 0);
	for (int adj = 0; adj < 2; adj++) {
		const r5_array *in = adj ? y : x;
		r5_array *want = apply_new(f, adj, in);
		add_into(want, 1.0f, apply_new(m, adj, in));
		expect_definition(adj ? "sum: (A + B)^H y = A^H y + B^H y" : "sum: (A + B) x = A x + B x",
				  apply_new(sum, adj, in), want);
		want = apply_new(f, adj, in);
		assert_int_equal(r5_zscale(ctx, want, adj ? conjf(alpha) : alpha), R5_OK);
		expect_definition(adj ? "scale: (a A)^H y = conj(a) A^H y" : "scale: (a A) x = a (A x)",
				  apply_new(scaled, adj, in), want);
	}
	r5_linop_free(sum);
	r5_linop_free(scaled);
	r5_linop_free(f);
	r5_linop_free(m);
	r5_array_free(mask);
	r5_array_free(x);
	r5_array_free(y);
}

/* [A; B] along dim: the parts of C x are A x then B x; C^H [ya; yb] = A^H ya + B^H yb */
static void check_vstack(const char *what, int dim, r5_linop *a, r5_linop *b)
{
	r5_linop *c = NULL;
	char text[96];
	assert_int_equal(r5_linop_vstack(ctx, dim, r5_linop_ref(a), r5_linop_ref(b), &c), R5_OK);
	r5_array *x = random_input(c->idims, 0), *y = random_input(c->odims, 0);
	r5_array *want = joined(dim, apply_new(a, 0, x), apply_new(b, 0, x));
	snprintf(text, sizeof text, "vstack %s: [A; B] x = [A x; B x]", what);
	expect_definition(text, apply_new(c, 0, x), want);
	r5_array *ya = part_of(y, dim, 0, a->odims), *yb = part_of(y, dim, a->odims[dim], b->odims);
	want = apply_new(a, 1, ya);
	add_into(want, 1.0f, apply_new(b, 1, yb));
	snprintf(text, sizeof text, "vstack %s: [A; B]^H y = A^H ya + B^H yb", what);
	expect_definition(text, apply_new(c, 1, y), want);
	r5_linop_free(c);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(ya);
	r5_array_free(yb);
}

/* [A B] along dim: C [xa; xb] = A xa + B xb; the parts of C^H y are A^H y then B^H y */
static void check_hstack(const char *what, int dim, r5_linop *a, r5_linop *b)
{
	r5_linop *c = NULL;
	char text[96];
	assert_int_equal(r5_linop_hstack(ctx, dim, r5_linop_ref(a), r5_linop_ref(b), &c), R5_OK);
	r5_array *x = random_input(c->idims, 0), *y = random_input(c->odims, 0);
	r5_array *xa = part_of(x, dim, 0, a->idims), *xb = part_of(x, dim, a->idims[dim], b->idims);
	r5_array *want = apply_new(a, 0, xa);
	add_into(want, 1.0f, apply_new(b, 0, xb));
	snprintf(text, sizeof text, "hstack %s: [A B] x = A xa + B xb", what);
	expect_definition(text, apply_new(c, 0, x), want);
	want = joined(dim, apply_new(a, 1, y), apply_new(b, 1, y));
	snprintf(text, sizeof text, "hstack %s: [A B]^H y = [A^H y; B^H y]", what);
	expect_definition(text, apply_new(c, 1, y), want);
	r5_linop_free(c);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(xa);
	r5_array_free(xb);
}

/* the stacks along x (strided parts) and coils (contiguous), with parts of unequal sizes along
 * the stack dimension, on operators that are not self-adjoint */
static void check_stacks(void)
{
	long d[R5_DIMS], cropped[R5_DIMS], dy3[R5_DIMS], dy5[R5_DIMS], dy8[R5_DIMS], d2[R5_DIMS], dmaps[R5_DIMS];
	dims4(d, 5, 4, 2, 1);
	dims4(cropped, 3, 4, 2, 1);
	dims4(dy3, 6, 3, 2, 1);
	dims4(dy5, 6, 5, 2, 1);
	dims4(dy8, 6, 8, 2, 1);
	dims4(d2, 6, 5, 1, 1);
	dims4(dmaps, 6, 5, 1, 2);
	r5_array *maps = random_input(dmaps, 0);
	r5_linop *f = NULL, *crop = NULL, *pad3 = NULL, *pad5 = NULL, *pad5i = NULL, *f2 = NULL, *s = NULL;
	r5_linop *sh = NULL;
	assert_int_equal(r5_linop_fft(ctx, d, 3, &f), R5_OK);
	assert_int_equal(r5_linop_resize(ctx, d, cropped, &crop), R5_OK);
	check_vstack("x [fft; crop]", R5_DIM_X, f, crop);
	assert_int_equal(r5_linop_fft(ctx, d2, 3, &f2), R5_OK);
	assert_int_equal(r5_linop_maps(ctx, maps, &s), R5_OK);
	check_vstack("coil [fft; maps]", R5_DIM_COIL, f2, s);
	assert_int_equal(r5_linop_resize(ctx, dy3, dy8, &pad3), R5_OK);
	assert_int_equal(r5_linop_resize(ctx, dy5, dy8, &pad5), R5_OK);
	assert_int_equal(r5_linop_scale(ctx, 0.3f + 0.8f * I, pad5, &pad5i), R5_OK);
	check_hstack("y [pad, a pad]", R5_DIM_Y, pad3, pad5i);
	assert_int_equal(r5_linop_adjoint_of(ctx, r5_linop_ref(s), &sh), R5_OK);
	check_hstack("coil [fft, maps^H]", R5_DIM_COIL, f2, sh);
	r5_linop *ops[] = {f, crop, pad3, pad5i, f2, s, sh};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		r5_linop_free(ops[i]);
	r5_array_free(maps);
}

/* adjoint-of (square FFT and non-square maps), identity, and chain C = B A */
static void check_adjoint_of_identity_chain(void)
{
	long d[R5_DIMS], dmaps[R5_DIMS];
	dims4(d, 6, 5, 1, 3);
	dims4(dmaps, 6, 5, 1, 3);
	r5_array *maps = random_input(dmaps, 0);
	r5_linop *f = NULL, *s = NULL, *fh = NULL, *sh = NULL, *id = NULL, *chain = NULL;
	assert_int_equal(r5_linop_fft(ctx, d, 3, &f), R5_OK);
	assert_int_equal(r5_linop_maps(ctx, maps, &s), R5_OK);
	assert_int_equal(r5_linop_adjoint_of(ctx, r5_linop_ref(f), &fh), R5_OK);
	assert_int_equal(r5_linop_adjoint_of(ctx, r5_linop_ref(s), &sh), R5_OK);
	assert_int_equal(r5_linop_identity(ctx, d, &id), R5_OK);
	assert_int_equal(r5_linop_chain(ctx, r5_linop_ref(s), r5_linop_ref(f), &chain), R5_OK);
	r5_array *x = random_input(s->idims, 0), *y = random_input(s->odims, 0);
	expect_definition("adjoint-of fft: (A^H) y = A^H y", apply_new(fh, 0, y), apply_new(f, 1, y));
	expect_definition("adjoint-of fft: (A^H)^H y = A y", apply_new(fh, 1, y), apply_new(f, 0, y));
	expect_definition("adjoint-of maps: (A^H) y = A^H y", apply_new(sh, 0, y), apply_new(s, 1, y));
	expect_definition("adjoint-of maps: (A^H)^H x = A x", apply_new(sh, 1, x), apply_new(s, 0, x));
	expect_definition("identity: I y = y", apply_new(id, 0, y), work_of(y));
	expect_definition("identity: I^H y = y", apply_new(id, 1, y), work_of(y));
	r5_array *ax = apply_new(s, 0, x), *bhy = apply_new(f, 1, y);
	expect_definition("chain: (B A) x = B (A x)", apply_new(chain, 0, x), apply_new(f, 0, ax));
	expect_definition("chain: (B A)^H y = A^H (B^H y)", apply_new(chain, 1, y), apply_new(s, 1, bhy));
	r5_linop *ops[] = {f, s, fh, sh, id, chain};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		r5_linop_free(ops[i]);
	r5_array *arrays[] = {maps, x, y, ax, bhy};
	for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
		r5_array_free(arrays[i]);
}

/* resize (odd and even sizes: the centre n / 2 matters) and circshift (negative shifts and
 * shifts beyond the size) against host loops: forward and adjoint */
static void check_resize_circshift(void)
{
	static const long sizes[][2][4] = {
		{{5, 4, 3, 1}, {8, 7, 3, 1}}, /* pad */
		{{8, 7, 3, 1}, {5, 4, 3, 1}}, /* crop */
		{{5, 8, 3, 1}, {8, 5, 3, 1}}, /* pad x, crop y */
		{{4, 7, 2, 1}, {7, 4, 3, 1}}, /* even to odd, odd to even */
	};
	char text[96];
	for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
		long di[R5_DIMS], dout[R5_DIMS];
		dims4(di, sizes[c][0][0], sizes[c][0][1], sizes[c][0][2], sizes[c][0][3]);
		dims4(dout, sizes[c][1][0], sizes[c][1][1], sizes[c][1][2], sizes[c][1][3]);
		r5_linop *r = NULL;
		assert_int_equal(r5_linop_resize(ctx, di, dout, &r), R5_OK);
		r5_array *x = random_input(di, 0), *y = random_input(dout, 0);
		snprintf(text, sizeof text, "resize %ldx%ldx%ld -> %ldx%ldx%ld: R x", di[0], di[1], di[2], dout[0],
			 dout[1], dout[2]);
		expect_definition(text, apply_new(r, 0, x), host_resize(x, dout));
		snprintf(text, sizeof text, "resize %ldx%ldx%ld -> %ldx%ldx%ld: R^H y", di[0], di[1], di[2], dout[0],
			 dout[1], dout[2]);
		expect_definition(text, apply_new(r, 1, y), host_resize(y, di));
		r5_linop_free(r);
		r5_array_free(x);
		r5_array_free(y);
	}
	static const long shift_sets[][3] = {{2, -3, 4}, {9, 1, -8}};
	for (size_t c = 0; c < sizeof shift_sets / sizeof shift_sets[0]; c++) {
		long d[R5_DIMS], shifts[R5_DIMS] = {0};
		dims4(d, 7, 6, 3, 1);
		shifts[0] = shift_sets[c][0], shifts[1] = shift_sets[c][1], shifts[2] = shift_sets[c][2];
		r5_linop *sh = NULL;
		assert_int_equal(r5_linop_circshift(ctx, d, shifts, &sh), R5_OK);
		r5_array *x = random_input(d, 0);
		snprintf(text, sizeof text, "circshift (%ld %ld %ld): out[i + s] = in[i]", shifts[0], shifts[1],
			 shifts[2]);
		expect_definition(text, apply_new(sh, 0, x), host_shift(x, shifts, 1));
		snprintf(text, sizeof text, "circshift (%ld %ld %ld): adjoint out[i - s] = in[i]", shifts[0],
			 shifts[1], shifts[2]);
		expect_definition(text, apply_new(sh, 1, x), host_shift(x, shifts, -1));
		r5_linop_free(sh);
		r5_array_free(x);
	}
}

static void test_definitions(void **state)
{
	(void)state;
	definition_state = 4242;
	worst_definition = 0;
	check_sum_scale();
	check_adjoint_of_identity_chain();
	check_stacks();
	check_resize_circshift();
	print_message("definitions: worst relative error %.2e (tolerance %.0e)\n", worst_definition, TOL_DEFINITION);
}

/* out may be in only where declared, and exactly; a partial overlap is always refused */
static void test_aliasing(void **state)
{
	(void)state;
	long dims[R5_DIMS], big[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8, dims[1] = 6;
	r5_dims_copy(big, dims);
	big[1] = 7;
	r5_linop *f = NULL, *sum = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 3, &f), R5_OK);
	r5_array *x = random_work(dims, 0), *whole = random_work(big, 0);
	assert_int_equal(r5_linop_forward(ctx, f, x, x), R5_OK); /* fft: in place declared */
	r5_array shifted = r5_array_view_strided(whole, dims, NULL, 8); /* one row up: overlaps `lower` */
	r5_array lower = r5_array_view_strided(whole, dims, NULL, 0);
	assert_int_equal(r5_linop_forward(ctx, f, &shifted, &lower), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "operator fft: forward output overlaps its input"));
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(f), &sum), R5_OK);
	assert_int_equal(r5_linop_adjoint(ctx, sum, x, x), R5_EINVAL); /* sum: out and in apart */
	assert_non_null(strstr(r5_last_error(), "fft+fft: adjoint output overlaps its input"));
	assert_int_equal(r5_linop_normal(ctx, sum, &shifted, &lower), R5_EINVAL);
	r5_array *y = random_work(dims, 0);
	assert_int_equal(r5_linop_normal(ctx, sum, y, x), R5_OK);
	r5_linop_free(sum);
	r5_linop_free(f);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(whole);
}

/* composites take the caller's reference; r5_linop_ref keeps an operand for another use */
static void test_refs(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8;
	r5_dims_copy(other, dims);
	other[0] = 9;
	r5_linop *f = NULL, *g = NULL, *scaled = NULL, *sum = NULL, *bad = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 1, &f), R5_OK);
	assert_int_equal(f->refs, 1);
	assert_int_equal(r5_linop_scale(ctx, 2.0f, r5_linop_ref(f), &scaled), R5_OK);
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(scaled), &sum), R5_OK);
	assert_int_equal(f->refs, 3); /* mine, scaled's, sum's */
	r5_linop_free(scaled);        /* sum still holds it */
	assert_int_equal(f->refs, 3);
	r5_array *x = random_work(dims, 0), *y = random_work(dims, 0), *z = random_work(dims, 0);
	assert_int_equal(r5_linop_forward(ctx, sum, y, x), R5_OK); /* 3 F x */
	assert_int_equal(r5_linop_forward(ctx, f, z, x), R5_OK);
	assert_int_equal(r5_zaxpy(ctx, y, -3.0f, z), R5_OK);
	double diff = 1, ref = 0;
	assert_int_equal(r5_znorm(ctx, y, &diff), R5_OK);
	assert_int_equal(r5_znorm(ctx, z, &ref), R5_OK);
	assert_true(diff < 1e-6 * ref);
	r5_linop_free(sum);
	assert_int_equal(f->refs, 1);
	/* a failed composite releases the references it was given */
	assert_int_equal(r5_linop_fft(ctx, other, 1, &g), R5_OK);
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(g), &bad), R5_EINVAL);
	assert_null(bad);
	assert_non_null(strstr(r5_last_error(), "operator sum: fft takes [8], fft takes [9]"));
	assert_int_equal(f->refs, 1);
	assert_int_equal(g->refs, 1);
	assert_int_equal(r5_linop_vstack(ctx, R5_DIMS, r5_linop_ref(f), r5_linop_ref(f), &bad), R5_EINVAL);
	assert_int_equal(f->refs, 1);
	r5_linop_free(g);
	r5_linop_free(f);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(z);
}

static void test_shape_error(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8;
	r5_dims_copy(other, dims);
	other[0] = 9;
	r5_linop *op = NULL, *b = NULL, *c = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 1, &op), R5_OK);
	r5_array *x = random_work(other, 0), *y = random_work(dims, 0);
	assert_int_equal(r5_linop_forward(ctx, op, y, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "fft"));
	assert_int_equal(r5_linop_fft(ctx, other, 1, &b), R5_OK);
	assert_int_equal(r5_linop_chain(ctx, op, b, &c), R5_EINVAL); /* frees both */
	assert_null(c);
	r5_array_free(x);
	r5_array_free(y);
}

static long bytes_of(long nx, long ny, long nz, long coils)
{
	return nx * ny * nz * coils * (long)sizeof(float complex);
}

/* The SENSE operator at vessel-wall size holds no coil-sized array before it is applied: built
 * on maps that are a zero-stride view of one value (the operator does not read them before its
 * first application), it holds the shifted mask alone. */
static void test_bytes_held_large(void **state)
{
	(void)state;
	const long nx = 384, ny = 384, nz = 256, coils = 12;
	long mdims[R5_DIMS], kdims[R5_DIMS], zero[R5_DIMS] = {0};
	r5_dims_ones(mdims);
	mdims[0] = nx, mdims[1] = ny, mdims[2] = nz, mdims[3] = coils;
	r5_dims_ones(kdims);
	kdims[1] = ny, kdims[2] = nz;
	r5_array *one = random_work(kdims, 0), *mask = random_work(kdims, 1);
	r5_array maps = r5_array_view_strided(one, mdims, zero, 0);
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_sense(ctx, &maps, mask, R5_FLAG(1) | R5_FLAG(2), &op), R5_OK);
	long held = r5_linop_bytes_held(op), coil_images = bytes_of(nx, ny, nz, coils);
	print_message("sense %ldx%ldx%ldx%ld: holds %ld B before its first application (coil images are %ld B); "
		      "after it %ld B\n", nx, ny, nz, coils, held, coil_images, held + coil_images);
	assert_int_equal(held, bytes_of(1, ny, nz, 1)); /* the shifted mask */
	r5_linop_free(op);
	r5_array_free(one);
	r5_array_free(mask);
}

/* What the SENSE operators hold after each kind of application, against the arrays they need:
 * plain: one array of coil images; grouped: one group's coil images (the groups add into the
 * output, no image of their own). */
static void test_bytes_held(void **state)
{
	(void)state;
	const long nx = 24, ny = 20, nz = 8, coils = 12, group = 5;
	long mdims[R5_DIMS], kdims[R5_DIMS];
	r5_dims_ones(mdims);
	mdims[0] = nx, mdims[1] = ny, mdims[2] = nz, mdims[3] = coils;
	r5_dims_ones(kdims);
	kdims[1] = ny, kdims[2] = nz;
	r5_array *maps = random_work(mdims, 0), *mask = random_work(kdims, 1);
	const long mask_bytes = bytes_of(1, ny, nz, 1), image = bytes_of(nx, ny, nz, 1);
	for (int grouped = 0; grouped < 2; grouped++) {
		r5_linop *op = NULL;
		assert_int_equal(r5_linop_sense_grouped(ctx, maps, mask, R5_FLAG(1) | R5_FLAG(2), grouped ? group : 0,
							NULL, NULL, &op), R5_OK);
		/* grouped: fft-sample of 5 coils shared by two groups, one of 2 coils */
		long before = grouped ? 2 * mask_bytes : mask_bytes;
		long after = before + (grouped ? bytes_of(nx, ny, nz, group) : bytes_of(nx, ny, nz, coils));
		assert_int_equal(r5_linop_bytes_held(op), before);
		r5_array *x = random_work(op->idims, 0), *nx_out = random_work(op->idims, 0);
		r5_array *k = random_work(op->odims, 0);
		assert_int_equal(r5_linop_normal(ctx, op, nx_out, x), R5_OK);
		print_message("%s %ldx%ldx%ldx%ld: %ld B before, %ld B after one normal\n", op->name, nx, ny, nz, coils,
			      before, r5_linop_bytes_held(op));
		assert_int_equal(r5_linop_bytes_held(op), after);
		assert_int_equal(r5_linop_forward(ctx, op, k, x), R5_OK);
		assert_int_equal(r5_linop_adjoint(ctx, op, x, k), R5_OK);
		assert_int_equal(r5_linop_bytes_held(op), after);
		r5_linop_free(op);
		r5_array_free(x);
		r5_array_free(nx_out);
		r5_array_free(k);
	}
	/* the maps operator's own normal: one volume, never coil images */
	r5_linop *s_op = NULL;
	assert_int_equal(r5_linop_maps(ctx, maps, &s_op), R5_OK);
	assert_int_equal(r5_linop_bytes_held(s_op), 0);
	r5_array *x = random_work(s_op->idims, 0), *y = random_work(s_op->idims, 0);
	assert_int_equal(r5_linop_normal(ctx, s_op, y, x), R5_OK);
	assert_int_equal(r5_linop_bytes_held(s_op), image);
	r5_linop_free(s_op);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(maps);
	r5_array_free(mask);
}

/* A = B^H B + I (n = 20) */
struct spd {
	float complex b[20 * 20];
};

static r5_status spd_apply(r5_ctx *c, void *user, r5_array *out, const r5_array *in)
{
	(void)c;
	struct spd *s = user;
	float complex tmp[20];
	for (int i = 0; i < 20; i++) {
		tmp[i] = 0;
		for (int j = 0; j < 20; j++)
			tmp[i] += s->b[i + 20 * j] * in->data[j];
	}
	for (int i = 0; i < 20; i++) {
		out->data[i] = in->data[i];
		for (int j = 0; j < 20; j++)
			out->data[i] += conjf(s->b[j + 20 * i]) * tmp[j];
	}
	return R5_OK;
}

static void test_cg(void **state)
{
	(void)state;
	struct spd s;
	for (int i = 0; i < 400; i++)
		s.b[i] = (rand() / (float)RAND_MAX - 0.5f) + I * (rand() / (float)RAND_MAX - 0.5f);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 20;
	r5_array *truth = random_work(dims, 0), *b = random_work(dims, 0), *x = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &x), R5_OK);
	spd_apply(ctx, &s, b, truth);
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = 100;
	conf.tolerance = 1e-6;
	r5_cg_info info;
	assert_int_equal(r5_cg_solve(ctx, &conf, spd_apply, &s, b, x, &info), R5_OK);
	double err = 0, ref = 0;
	for (int i = 0; i < 20; i++) {
		err += pow(cabsf(x->data[i] - truth->data[i]), 2);
		ref += pow(cabsf(truth->data[i]), 2);
	}
	print_message("cg: %d iterations, residual %.2e, error %.2e\n", info.iters, info.rel_residual, sqrt(err / ref));
	/* CG stops at relative residual 1e-6, so the error is up to that times the condition number:
	 * measured 1.04e-6 here, 1.86e-6 and 3.86e-6 with other random matrices of this family (the
	 * bound was 1e-4) */
	assert_true(sqrt(err / ref) < 1e-5);
	/* Tikhonov, exactly: b = (A + lambda I) truth, so (A + lambda I) x = b gives x = truth; with
	 * lambda ignored x would be truth + lambda A^-1 truth, far off (the check was
	 * |lambda x_0 - b_0| < 5 % at lambda 1e4, where x ~ b / lambda) */
	const float lambda = 3.0f;
	spd_apply(ctx, &s, b, truth);
	for (int i = 0; i < 20; i++)
		b->data[i] += lambda * truth->data[i];
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	conf.lambda = lambda;
	assert_int_equal(r5_cg_solve(ctx, &conf, spd_apply, &s, b, x, &info), R5_OK);
	err = 0;
	for (int i = 0; i < 20; i++)
		err += pow(cabsf(x->data[i] - truth->data[i]), 2);
	print_message("cg, Tikhonov lambda %.0f: %d iterations, error %.2e\n", lambda, info.iters, sqrt(err / ref));
	assert_true(sqrt(err / ref) < 2.5e-6); /* measured 1.07e-6 */
	r5_array_free(truth);
	r5_array_free(b);
	r5_array_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_definitions),
		cmocka_unit_test(test_aliasing),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_shape_error),
		cmocka_unit_test(test_bytes_held_large),
		cmocka_unit_test(test_bytes_held),
		cmocka_unit_test(test_cg),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
