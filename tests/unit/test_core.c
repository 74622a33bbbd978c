/* Numerical core on the CPU back end: centred unitary FFT against a direct DFT (odd and even
 * sizes, several dimension subsets), the adjoint identity of the FFT, broadcasting multiply,
 * sums, resize, rss, zgemm, Hermitian eigen-decomposition, and the back-end table check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/backends/backends.h"
#include "recon/cpu/backend_cpu.h"
#include "recon/core/array.h"
#include "recon/core/fft.h"
#include "recon/core/hd.h"
#include "recon/core/log.h"

#include "cpu_fixture.h"

static float frand(void) { return (float)rand() / RAND_MAX * 2.0f - 1.0f; }

static r5_array *random_array(const long dims[R5_DIMS])
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = frand() + I * frand();
	return a;
}

static double rel_err(const float complex *x, const double complex *ref, long n)
{
	double num = 0, den = 0;
	for (long i = 0; i < n; i++) {
		num += pow(cabs(x[i] - ref[i]), 2);
		den += pow(cabs(ref[i]), 2);
	}
	return sqrt(num / den);
}

/* Direct centred unitary DFT over flagged dims, in double. */
static void direct_dft(const r5_array *in, unsigned long flags, int inverse, double complex *out)
{
	long n = r5_array_size(in);
	long str[R5_DIMS];
	r5_dims_strides(str, in->dims);
	double scale = 1;
	for (int d = 0; d < R5_DIMS; d++)
		if (flags & (1UL << d))
			scale *= in->dims[d];
	for (long o = 0; o < n; o++) {
		long kidx[R5_DIMS], rest = o;
		for (int d = 0; d < R5_DIMS; d++) {
			kidx[d] = rest % in->dims[d];
			rest /= in->dims[d];
		}
		double complex sum = 0;
		for (long i = 0; i < n; i++) {
			long nidx[R5_DIMS], r2 = i, skip = 0;
			double phase = 0;
			for (int d = 0; d < R5_DIMS; d++) {
				nidx[d] = r2 % in->dims[d];
				r2 /= in->dims[d];
				if (flags & (1UL << d)) {
					long c = in->dims[d] / 2;
					phase += (double)(kidx[d] - c) * (double)(nidx[d] - c) / in->dims[d];
				} else if (nidx[d] != kidx[d]) {
					skip = 1;
				}
			}
			if (skip)
				continue;
			sum += in->data[i] * cexp((inverse ? 2 : -2) * R5_PI * I * phase);
		}
		out[o] = sum / sqrt(scale);
	}
}

static void check_fft_case(long x, long y, long z, long coils, unsigned long flags)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = x;
	dims[1] = y;
	dims[2] = z;
	dims[3] = coils;
	r5_array *in = random_array(dims), *out = NULL, *back = NULL;
	long n = r5_array_size(in);
	double complex *ref = malloc(sizeof *ref * n);
	assert_int_equal(r5_array_alloc_host(dims, &out), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &back), R5_OK);
	for (int inverse = 0; inverse < 2; inverse++) {
		direct_dft(in, flags, inverse, ref);
		assert_int_equal((inverse ? r5_ifft : r5_fft)(ctx, flags, out, in), R5_OK);
		double err = rel_err(out->data, ref, n);
		if (err > 1e-5)
			fail_msg("fft %ld x %ld x %ld x %ld flags 0x%lx inverse %d: rel err %g", x, y, z, coils, flags,
				 inverse, err);
	}
	/* round trip, in place */
	assert_int_equal(r5_fft(ctx, flags, out, in), R5_OK);
	assert_int_equal(r5_ifft(ctx, flags, out, out), R5_OK);
	for (long i = 0; i < n; i++)
		ref[i] = in->data[i];
	assert_true(rel_err(out->data, ref, n) < 1e-5);
	free(ref);
	r5_array_free(in);
	r5_array_free(out);
	r5_array_free(back);
}

static void test_fft_against_dft(void **state)
{
	(void)state;
	check_fft_case(8, 1, 1, 1, 1);
	check_fft_case(7, 1, 1, 1, 1);
	check_fft_case(6, 5, 1, 2, 3);
	check_fft_case(5, 9, 1, 3, 3);
	check_fft_case(5, 4, 3, 2, 7);
	check_fft_case(4, 5, 3, 2, 2);
	check_fft_case(3, 4, 5, 2, 5);
	check_fft_case(6, 3, 4, 1, 6);
}

/* <F x, y> = <x, F^H y> for the centred FFT */
static void test_fft_adjoint(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 33;
	dims[1] = 20;
	dims[3] = 4;
	r5_array *x = random_array(dims), *y = random_array(dims), *fx = NULL, *fhy = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &fx), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &fhy), R5_OK);
	assert_int_equal(r5_fft(ctx, 3, fx, x), R5_OK);
	assert_int_equal(r5_ifft(ctx, 3, fhy, y), R5_OK);
	double complex a, b;
	assert_int_equal(r5_zdot(ctx, fx, y, &a), R5_OK);
	assert_int_equal(r5_zdot(ctx, x, fhy, &b), R5_OK);
	assert_true(cabs(a - b) / cabs(a) < 1e-5);
	double nx, nfx;
	assert_int_equal(r5_znorm(ctx, x, &nx), R5_OK);
	assert_int_equal(r5_znorm(ctx, fx, &nfx), R5_OK);
	assert_true(fabs(nx - nfx) / nx < 1e-5); /* unitary */
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(fx);
	r5_array_free(fhy);
}

static void test_broadcast_multiply_and_sum(void **state)
{
	(void)state;
	long img_dims[R5_DIMS], coil_dims[R5_DIMS], map_dims[R5_DIMS];
	r5_dims_ones(img_dims);
	img_dims[0] = 5;
	img_dims[1] = 3;
	r5_dims_copy(coil_dims, img_dims);
	coil_dims[3] = 4;
	r5_dims_copy(map_dims, coil_dims);
	r5_array *img = random_array(img_dims), *maps = random_array(map_dims), *coils = NULL, *back = NULL;
	assert_int_equal(r5_array_alloc_host(coil_dims, &coils), R5_OK);
	assert_int_equal(r5_array_alloc_host(img_dims, &back), R5_OK);
	assert_int_equal(r5_zmul(ctx, coils, maps, img, 0), R5_OK);
	for (long c = 0; c < 4; c++)
		for (long i = 0; i < 15; i++)
			assert_true(cabs(coils->data[c * 15 + i] - maps->data[c * 15 + i] * img->data[i]) < 1e-6);
	/* adjoint: sum_c coils * conj(maps) */
	r5_array *prod = NULL;
	assert_int_equal(r5_array_alloc_host(coil_dims, &prod), R5_OK);
	assert_int_equal(r5_zmul(ctx, prod, coils, maps, R5_ZMUL_CONJ2), R5_OK);
	assert_int_equal(r5_zsum(ctx, back, prod), R5_OK);
	for (long i = 0; i < 15; i++) {
		double complex want = 0;
		for (long c = 0; c < 4; c++)
			want += coils->data[c * 15 + i] * conjf(maps->data[c * 15 + i]);
		assert_true(cabs(back->data[i] - want) < 1e-5);
	}
	/* shape errors name the shapes */
	long bad[R5_DIMS];
	r5_dims_copy(bad, img_dims);
	bad[0] = 4;
	r5_array *wrong = random_array(bad);
	assert_int_equal(r5_zmul(ctx, coils, maps, wrong, 0), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "[4 3]"));
	r5_array_free(wrong);
	r5_array_free(img);
	r5_array_free(maps);
	r5_array_free(coils);
	r5_array_free(back);
	r5_array_free(prod);
}

static void test_resize_and_rss(void **state)
{
	(void)state;
	long small[R5_DIMS], big[R5_DIMS];
	r5_dims_ones(small);
	small[0] = 3;
	small[1] = 2;
	r5_dims_ones(big);
	big[0] = 6;
	big[1] = 5;
	r5_array *a = random_array(small), *b = NULL, *c = NULL;
	assert_int_equal(r5_array_alloc_host(big, &b), R5_OK);
	assert_int_equal(r5_array_alloc_host(small, &c), R5_OK);
	assert_int_equal(r5_zresize_centered(ctx, b, a), R5_OK);
	/* centre of small (1,1) lands on centre of big (3,2) */
	assert_true(cabs(b->data[3 + 2 * 6] - a->data[1 + 1 * 3]) == 0);
	assert_true(cabs(b->data[0]) == 0);
	assert_int_equal(r5_zresize_centered(ctx, c, b), R5_OK);
	for (int i = 0; i < 6; i++)
		assert_true(c->data[i] == a->data[i]);
	long cd[R5_DIMS], od[R5_DIMS];
	r5_dims_ones(cd);
	cd[0] = 4;
	cd[3] = 3;
	r5_dims_ones(od);
	od[0] = 4;
	r5_array *coils = random_array(cd), *rss = NULL;
	assert_int_equal(r5_array_alloc_host(od, &rss), R5_OK);
	assert_int_equal(r5_zrss(ctx, rss, coils, 3), R5_OK);
	for (int i = 0; i < 4; i++) {
		double s = 0;
		for (int k = 0; k < 3; k++)
			s += pow(cabs(coils->data[i + 4 * k]), 2);
		assert_true(fabs(crealf(rss->data[i]) - sqrt(s)) < 1e-5);
	}
	r5_array_free(a);
	r5_array_free(b);
	r5_array_free(c);
	r5_array_free(coils);
	r5_array_free(rss);
}

static void test_zgemm(void **state)
{
	(void)state;
	const struct r5_backend *b = r5_ctx_backend(ctx);
	long m = 7, n = 5, k = 6;
	float complex a[7 * 6], bm[6 * 5], c[7 * 5], at[6 * 7], c2[7 * 5];
	for (int i = 0; i < 42; i++)
		a[i] = frand() + I * frand();
	for (int i = 0; i < 30; i++)
		bm[i] = frand() + I * frand();
	for (int i = 0; i < 35; i++)
		c[i] = c2[i] = frand() + I * frand();
	/* at = a^T conj so that at^H = a */
	for (int i = 0; i < 7; i++)
		for (int l = 0; l < 6; l++)
			at[l + i * 6] = conjf(a[i + l * 7]);
	float complex alpha = 0.5f - 0.25f * I, beta = 2.0f;
	double complex want[35];
	for (int j = 0; j < 5; j++)
		for (int i = 0; i < 7; i++) {
			double complex s = 0;
			for (int l = 0; l < 6; l++)
				s += a[i + l * 7] * bm[l + j * 6];
			want[i + j * 7] = alpha * s + beta * c[i + j * 7];
		}
	assert_int_equal(b->zgemm(r5_ctx_state(ctx), 0, m, n, k, alpha, a, 7, bm, 6, beta, c, 7), R5_OK);
	assert_true(rel_err(c, want, 35) < 1e-5);
	assert_int_equal(b->zgemm(r5_ctx_state(ctx), 1, m, n, k, alpha, at, 6, bm, 6, beta, c2, 7), R5_OK);
	assert_true(rel_err(c2, want, 35) < 1e-5);
}

/* A = V diag(w) V^H reconstructs from the batched eigen-decomposition, eigenvalues descending */
static void test_eig(void **state)
{
	(void)state;
	enum { N = 8, BATCH = 17 };
	float complex *mats = malloc(sizeof *mats * N * N * BATCH), *orig = malloc(sizeof *orig * N * N * BATCH);
	float evals[N * BATCH];
	for (int b = 0; b < BATCH; b++) {
		float complex g[N * N];
		for (int i = 0; i < N * N; i++)
			g[i] = frand() + I * frand();
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++) {
				float complex s = 0;
				for (int l = 0; l < N; l++)
					s += g[i + l * N] * conjf(g[j + l * N]);
				mats[b * N * N + i + j * N] = orig[b * N * N + i + j * N] = s;
			}
	}
	assert_int_equal(r5_ctx_backend(ctx)->zheev_batched(r5_ctx_state(ctx), BATCH, N, mats, evals), R5_OK);
	for (int b = 0; b < BATCH; b++) {
		const float complex *v = mats + b * N * N;
		const float *w = evals + b * N;
		for (int i = 1; i < N; i++)
			assert_true(w[i - 1] >= w[i]);
		double num = 0, den = 0;
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++) {
				double complex s = 0;
				for (int l = 0; l < N; l++)
					s += v[i + l * N] * w[l] * conjf(v[j + l * N]);
				num += pow(cabs(s - orig[b * N * N + i + j * N]), 2);
				den += pow(cabs(orig[b * N * N + i + j * N]), 2);
			}
		assert_true(sqrt(num / den) < 1e-4);
	}
	free(mats);
	free(orig);
}

static void test_elementwise(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 100;
	r5_array *x = random_array(dims), *y = random_array(dims), *y0 = NULL, *t = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &y0), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &t), R5_OK);
	assert_int_equal(r5_array_copy(ctx, y0, y), R5_OK);
	assert_int_equal(r5_zaxpby(ctx, 2.0f + I, x, -0.5f, y), R5_OK);
	for (int i = 0; i < 100; i++)
		assert_true(cabs(y->data[i] - ((2.0f + I) * x->data[i] - 0.5f * y0->data[i])) < 1e-5);
	assert_int_equal(r5_zsoftthresh(ctx, 0.5f, t, x), R5_OK);
	for (int i = 0; i < 100; i++) {
		float m = cabsf(x->data[i]);
		float complex want = m <= 0.5f ? 0 : x->data[i] * (m - 0.5f) / m;
		assert_true(cabs(t->data[i] - want) < 1e-6);
	}
	assert_int_equal(r5_zunary(ctx, R5_UNARY_RECIP, t, x), R5_OK);
	assert_true(cabs(t->data[3] * x->data[3] - 1) < 1e-5);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(y0);
	r5_array_free(t);
}

static void test_backend_table_and_errors(void **state)
{
	(void)state;
	assert_int_equal(r5_backend_check(r5_backend_cpu()), R5_OK);
	struct r5_backend broken = *r5_backend_cpu();
	broken.zgemm = NULL;
	assert_int_equal(r5_backend_check(&broken), R5_EINTERNAL);
	assert_non_null(strstr(r5_last_error(), "zgemm"));
	if (r5_backend_cuda())
		assert_int_equal(r5_backend_check(r5_backend_cuda()), R5_OK);
	r5_ctx *c = NULL;
	assert_int_equal(r5_ctx_create(&c, "tpu", 0), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "tpu"));
	/* absurd sizes are refused before allocating */
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = dims[1] = dims[2] = 100000;
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_ERANGE);
	assert_null(a);
	dims[0] = -3;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_ERANGE);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* A lazily zeroed grid: zero everywhere, and only written pages become resident (the scan
 * builder reserves memory by the lines written, so a 256 MiB grid with 4 lines must cost a few
 * pages, not 256 MiB). */
static void test_zeros_lazy(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 256, dims[1] = 256, dims[2] = 64, dims[3] = 8; /* 256 MiB */
	long before = rss_kb();
	r5_array *a = NULL;
	assert_int_equal(r5_array_zeros_lazy(dims, &a), R5_OK);
	assert_int_equal((uintptr_t)a->data % 64, 0);
	for (long line = 0; line < 4; line++)
		a->data[line * 256 * 256 * 17] = 1.0f + (float)line * I;
	long grown = rss_kb() - before;
	assert_true(grown >= 0 && grown < 4096); /* kB */
	assert_true(a->data[256 * 256 * 17] == 1.0f + 1.0f * I);
	assert_true(a->data[12345] == 0.0f);
	r5_array_free(a);
	dims[0] = -1;
	assert_int_not_equal(r5_array_zeros_lazy(dims, &a), R5_OK);
}

/* Log records and status messages: one line of valid UTF-8 whatever the input. */
static void test_text_escape(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "plain"},
		{"a\nb\rc\td", "a\\nb\\rc\\td"},
		{"esc\x1b[31m del\x7f", "esc\\x1b[31m del\\x7f"},
		{"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},    /* 2- and 4-byte sequences kept */
		{"bad \xff\xfe end", "bad ?? end"},                                    /* not UTF-8 */
		{"over \xc0\x80 long", "over ?? long"},                                /* overlong NUL */
		{"surr \xed\xa0\x80", "surr ???"},                                     /* UTF-16 surrogate */
		{"cut \xc3", "cut ?"},                                                 /* truncated at the end */
		{"nel \xc2\x85 ls \xe2\x80\xa8 ps \xe2\x80\xa9", "nel \\u0085 ls \\u2028 ps \\u2029"},
		{"2026-01-01T00:00:00Z recon5t INFO x\n2026 forged", "2026-01-01T00:00:00Z recon5t INFO x\\n2026 forged"},
	};
	char out[128];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = r5_text_escape(out, sizeof out, cases[i].in);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
	}
	/* the end of a small buffer never splits a character or an escape */
	r5_text_escape(out, 6, "ab\xc3\xa9\xc3\xa9");
	assert_string_equal(out, "ab\xc3\xa9");
	r5_text_escape(out, 4, "a\nb");
	assert_string_equal(out, "a\\n");
	r5_text_escape(out, 3, "a\nb");
	assert_string_equal(out, "a");
	r5_text_escape(out, sizeof out, NULL);
	assert_string_equal(out, "");
}

/* Views never own: a view of an owning array, freed through a heap descriptor copy of it,
 * leaves the base intact (ASan would report the double free a copied owns = 1 caused). */
static void test_view_strided(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 4, dims[1] = 3, dims[3] = 2;
	r5_array *base = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &base), R5_OK);
	for (long i = 0; i < r5_array_size(base); i++)
		base->data[i] = (float)i;
	long vd[R5_DIMS];
	r5_dims_copy(vd, dims);
	vd[R5_DIM_COIL] = 1;
	r5_array v = r5_array_view_strided(base, vd, NULL, base->strides[R5_DIM_COIL]);
	assert_int_equal(v.owns, 0);
	assert_int_equal(v.where, base->where);
	assert_true(v.data == base->data + 12);
	assert_int_equal(v.strides[1], base->strides[1]);
	long tr[R5_DIMS];
	r5_dims_ones(tr);
	tr[0] = 4, tr[1] = 1; /* the 4x3 base transposed */
	long td[R5_DIMS];
	r5_dims_ones(td);
	td[0] = 3, td[1] = 4;
	r5_array t = r5_array_view_strided(base, td, tr, 0);
	assert_true(t.data[1 * t.strides[0] + 2 * t.strides[1]] == base->data[2 + 4 * 1]);
	r5_array *heap = malloc(sizeof *heap);
	*heap = v;
	r5_array_free(heap); /* frees the descriptor only */
	assert_true(base->data[13] == 13.0f);
	r5_array_free(base);
}

/* A context that transforms many shapes keeps at most R5_CTX_FFT_CACHE_ENTRIES of them (and
 * their ramps within R5_CTX_FFT_CACHE_BYTES, plus the shape in use), and a shape that was
 * evicted and comes back transforms correctly. */
static void test_fft_cache_bounded(void **state)
{
	(void)state;
	r5_ctx *c = NULL;
	assert_int_equal(r5_ctx_create(&c, "cpu", 0), R5_OK);
	long max_entries = 0, max_bytes = 0;
	for (int round = 0; round < 2; round++)
		for (int k = 0; k < 40; k++) {
			long dims[R5_DIMS];
			r5_dims_ones(dims);
			dims[0] = 16 + k, dims[1] = 12 + (k % 7), dims[2] = k % 3 ? 1 : 8;
			r5_array *x = NULL, *y = NULL;
			assert_int_equal(r5_array_alloc_host(dims, &x), R5_OK);
			assert_int_equal(r5_array_alloc_host(dims, &y), R5_OK);
			long n = r5_array_size(x);
			for (long i = 0; i < n; i++)
				x->data[i] = (float)((i * 7919 + k) % 101) / 50.0f - 1.0f + I * (float)(i % 13);
			unsigned long flags = dims[2] > 1 ? 7UL : 3UL;
			assert_int_equal(r5_fft(c, flags, y, x), R5_OK);
			assert_int_equal(r5_ifft(c, flags, y, y), R5_OK);
			double err = 0, norm = 0;
			for (long i = 0; i < n; i++) {
				err += pow(cabsf(y->data[i] - x->data[i]), 2);
				norm += pow(cabsf(x->data[i]), 2);
			}
			assert_true(sqrt(err / norm) < 1e-5);
			long entries, bytes;
			r5_ctx_fft_cache_usage(c, &entries, &bytes);
			max_entries = entries > max_entries ? entries : max_entries;
			max_bytes = bytes > max_bytes ? bytes : max_bytes;
			r5_array_free(x);
			r5_array_free(y);
		}
	assert_int_equal(max_entries, R5_CTX_FFT_CACHE_ENTRIES);
	assert_true(max_bytes <= R5_CTX_FFT_CACHE_BYTES);
	r5_ctx_destroy(c);
}

/* The raw-pointer wrappers compute what the slot computes and refuse sizes that would make a
 * back end read or write outside the buffers. */
static void test_raw_wrappers(void **state)
{
	(void)state;
	float complex a[6] = {1, 2, 3, 4 * I, 5, 6}, b[2] = {1, I}, c[3] = {0, 0, 0};
	/* C (3x1) = A (3x2) B (2x1) */
	assert_int_equal(r5_zgemm(ctx, 0, 3, 1, 2, 1.0f, a, 3, b, 2, 0.0f, c, 3), R5_OK);
	assert_true(cabsf(c[0] - (1 + 4 * I * I)) < 1e-6f && cabsf(c[1] - (2 + 5 * I)) < 1e-6f);
	assert_int_equal(r5_zgemm(ctx, 0, 3, 1, 2, 1.0f, a, 2, b, 2, 0.0f, c, 3), R5_EINVAL); /* lda < m */
	assert_int_equal(r5_zgemm(ctx, 1, 2, 1, 3, 1.0f, a, 2, b, 3, 0.0f, c, 2), R5_EINVAL); /* lda < k */
	assert_int_equal(r5_zgemm(ctx, 0, -1, 1, 2, 1.0f, a, 3, b, 2, 0.0f, c, 3), R5_EINVAL);
	float complex m[4] = {2, 0, 0, 1};
	float ev[2];
	assert_int_equal(r5_zheev_batched(ctx, 1, 2, m, ev), R5_OK);
	assert_true(fabsf(ev[0] - 2.0f) < 1e-5f && fabsf(ev[1] - 1.0f) < 1e-5f);
	assert_int_equal(r5_zheev_batched(ctx, 1, 0, m, ev), R5_EINVAL);
	long dims[R5_DIMS], os[R5_DIMS], is[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 2;
	r5_dims_ones(os);
	r5_dims_ones(is);
	is[0] = 2; /* every second element */
	float complex out[2];
	assert_int_equal(r5_zcopy_strided(ctx, dims, os, out, is, a), R5_OK);
	assert_true(out[0] == a[0] && out[1] == a[2]);
	os[0] = 0;
	assert_int_equal(r5_zcopy_strided(ctx, dims, os, out, is, a), R5_EINVAL);
	assert_int_equal(r5_ctx_sync(ctx), R5_OK);
}

int main(void)
{
	srand(1234);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fft_against_dft),
		cmocka_unit_test(test_fft_adjoint),
		cmocka_unit_test(test_broadcast_multiply_and_sum),
		cmocka_unit_test(test_resize_and_rss),
		cmocka_unit_test(test_zgemm),
		cmocka_unit_test(test_eig),
		cmocka_unit_test(test_elementwise),
		cmocka_unit_test(test_backend_table_and_errors),
		cmocka_unit_test(test_zeros_lazy),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_view_strided),
		cmocka_unit_test(test_fft_cache_bounded),
		cmocka_unit_test(test_raw_wrappers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
