/* Image-quality figures (recon/pipeline/quality.h), unmasked and inside a 0/1 mask:
 *   closed forms: a constant 1 reference against a constant 0.5 image gives nrmse 0.5, psnr
 *     20 log10 2, ssim (1 + C1) / (1.25 + C1) with C1 = 0.01^2 (the variances are 0, so C2
 *     cancels), the same inside any mask; --scale's factor 2 makes nrmse 0;
 *   a 10 % error inside the mask gives nrmse 0.1 there; the same error more than the window's
 *     half width (5) away from the mask gives nrmse 0, psnr inf and ssim 1 inside it while the
 *     unmasked figures see it; an all-ones mask gives the unmasked nrmse, psnr and scale to
 *     the bit and ssim to 1e-12 (one core, summed in another order); the factor of the least-
 *     squares scaling is the whole image's with or without a mask;
 *   leading_block with a mask compares img's first ref-sized block (the second one is noise);
 *   bad input: mask shape, a value 0.5, an imaginary part, no 1, NaN in the image, reference
 *     and image shapes — each refused naming what was wrong;
 *   a series of 4 frames along dim 10 (frame t: 10 (t+1) % error in the block): each frame's
 *     figures equal that frame compared alone (to the bit), their mean is reported, and each
 *     frame's least-squares factor is its own (frame t of the image = (t+1) x the reference's:
 *     nrmse 0 with --scale); one image against 4 frames is compared with their time average
 *     (the average itself: nrmse 0, ssim 1; frame 0: not 0); 3 frames against 4, and a dim
 *     above 10 that is not 1, are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recon/pipeline/quality.h"

enum { NX = 40, NY = 36, NZ = 3 };

static r5_array *image(long nx, long ny, long nz, long nmaps)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = nx, dims[1] = ny, dims[2] = nz, dims[4] = nmaps;
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = 0;
	return a;
}

/* 1 inside the block x 6..17, y 8..19 of every plane (432 voxels over 3 planes). */
static int in_block(long x, long y)
{
	return x >= 6 && x < 18 && y >= 8 && y < 20;
}

/* > 5 voxels from the block in x and y */
static int far_from_block(long x, long y)
{
	return x >= 26 && x < 38 && y >= 26 && y < 34;
}

static r5_array *block_mask(void)
{
	r5_array *m = image(NX, NY, NZ, 1);
	for (long z = 0; z < NZ; z++)
		for (long y = 0; y < NY; y++)
			for (long x = 0; x < NX; x++)
				m->data[(z * NY + y) * NX + x] = in_block(x, y);
	return m;
}

/* A smooth positive reference, and it times 1.1 where where(x, y) holds. */
static void reference_and_error(r5_array *ref, r5_array *img, int (*where)(long, long))
{
	for (long z = 0; z < NZ; z++)
		for (long y = 0; y < NY; y++)
			for (long x = 0; x < NX; x++) {
				long i = (z * NY + y) * NX + x;
				ref->data[i] = 0.5f + 0.4f * sinf(0.3f * x + 0.2f * y + z) * cosf(0.17f * y) + 0.1f * I;
				img->data[i] = ref->data[i] * (where(x, y) ? 1.1f : 1.0f);
			}
}

static void test_constants(void **state)
{
	(void)state;
	r5_array *ref = image(NX, NY, NZ, 1), *img = image(NX, NY, NZ, 1), *mask = block_mask();
	for (long i = 0; i < r5_array_size(ref); i++)
		ref->data[i] = 1, img->data[i] = 0.5f * I; /* magnitudes compared */
	double c1 = 1e-4, want_ssim = (1 + c1) / (1.25 + c1);
	r5_quality q;
	long voxels = 0;
	assert_int_equal(r5_quality_compare(ref, img, 0, &q), R5_OK);
	assert_true(fabs(q.nrmse - 0.5) < 1e-12 && fabs(q.psnr - 20 * log10(2.0)) < 1e-9);
	assert_true(fabs(q.ssim - want_ssim) < 1e-12 && q.scale == 1);
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 0, 0, &q, &voxels), R5_OK);
	assert_int_equal(voxels, 432);
	assert_true(fabs(q.nrmse - 0.5) < 1e-12 && fabs(q.psnr - 20 * log10(2.0)) < 1e-9);
	assert_true(fabs(q.ssim - want_ssim) < 1e-12);
	printf("constants: masked ssim %.12f (closed form %.12f)\n", q.ssim, want_ssim);
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 1, 0, &q, NULL), R5_OK);
	assert_true(fabs(q.scale - 2) < 1e-12 && q.nrmse < 1e-12);
	r5_array_free(ref), r5_array_free(img), r5_array_free(mask);
}

static void test_error_inside_and_outside(void **state)
{
	(void)state;
	r5_array *ref = image(NX, NY, NZ, 1), *img = image(NX, NY, NZ, 1), *mask = block_mask();
	r5_quality q, whole;
	long voxels = 0;
	reference_and_error(ref, img, in_block);
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 0, 0, &q, &voxels), R5_OK);
	assert_int_equal(voxels, 432);
	assert_true(fabs(q.nrmse - 0.1) < 1e-6);
	assert_int_equal(r5_quality_compare_squeezed(ref, img, 0, 0, &whole), R5_OK);
	assert_true(whole.nrmse > 0.01 && whole.nrmse < 0.07); /* the error in 12 % of the voxels */
	printf("error inside: masked nrmse %.6f ssim %.6f, whole %.6f %.6f\n", q.nrmse, q.ssim, whole.nrmse, whole.ssim);

	reference_and_error(ref, img, far_from_block);
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 0, 0, &q, NULL), R5_OK);
	assert_true(q.nrmse == 0 && isinf(q.psnr) && fabs(q.ssim - 1) < 1e-12);
	assert_int_equal(r5_quality_compare(ref, img, 0, &whole), R5_OK);
	assert_true(whole.nrmse > 0.01 && whole.ssim < 0.9999);
	printf("error outside: masked nrmse %g ssim %.12f, whole %.6f %.6f\n", q.nrmse, q.ssim, whole.nrmse, whole.ssim);
	r5_array_free(ref), r5_array_free(img), r5_array_free(mask);
}

static void test_all_ones_is_unmasked(void **state)
{
	(void)state;
	r5_array *ref = image(NX, NY, NZ, 1), *img = image(NX, NY, NZ, 1), *ones = image(NX, NY, NZ, 1);
	reference_and_error(ref, img, far_from_block);
	for (long i = 0; i < r5_array_size(ones); i++)
		ones->data[i] = 1;
	for (int scale = 0; scale <= 1; scale++) {
		r5_quality q, plain;
		long voxels = 0;
		assert_int_equal(r5_quality_compare_masked(ref, img, ones, scale, 0, &q, &voxels), R5_OK);
		assert_int_equal(r5_quality_compare_masked(ref, img, NULL, scale, 0, &plain, NULL), R5_OK);
		assert_int_equal(voxels, NX * NY * NZ);
		assert_true(q.nrmse == plain.nrmse && q.psnr == plain.psnr && q.scale == plain.scale);
		assert_true(fabs(q.ssim - plain.ssim) < 1e-12);
		printf("all ones, scale %d: nrmse %.9f psnr %.6f ssim %.12f (unmasked %.12f) scale %.9f\n", scale, q.nrmse,
		       q.psnr, q.ssim, plain.ssim, q.scale);
	}
	/* --scale's factor is the whole image's: the block mask gets the same one */
	r5_array *mask = block_mask();
	r5_quality q, plain;
	reference_and_error(ref, img, in_block);
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 1, 0, &q, NULL), R5_OK);
	assert_int_equal(r5_quality_compare(ref, img, 1, &plain), R5_OK);
	assert_true(q.scale == plain.scale && q.scale < 0.999 && q.nrmse > 0.08 && q.nrmse < 0.1);
	r5_array_free(ref), r5_array_free(img), r5_array_free(ones), r5_array_free(mask);
}

static void test_leading_block(void **state)
{
	(void)state;
	r5_array *ref = image(NX, NY, NZ, 1), *img = image(NX, NY, NZ, 2), *first = image(NX, NY, NZ, 1);
	r5_array *mask = block_mask();
	reference_and_error(ref, first, in_block);
	long block = r5_array_size(ref);
	for (long i = 0; i < block; i++)
		img->data[i] = first->data[i], img->data[block + i] = (float)((i * 7919) % 101) - 50.0f;
	r5_quality q, want;
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 1, 1, &q, NULL), R5_OK);
	assert_int_equal(r5_quality_compare_masked(ref, first, mask, 1, 0, &want, NULL), R5_OK);
	assert_true(q.nrmse == want.nrmse && q.psnr == want.psnr && q.ssim == want.ssim && q.scale == want.scale);
	/* without leading_block the extra map dimension is a shape mismatch */
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 1, 0, &q, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "does not match the reconstruction's [40 36 3 2]"));
	r5_array_free(ref), r5_array_free(img), r5_array_free(first), r5_array_free(mask);
}

static void expect_refused(const r5_array *ref, const r5_array *img, const r5_array *mask, const char *text)
{
	r5_quality q;
	assert_int_equal(r5_quality_compare_masked(ref, img, mask, 0, 0, &q, NULL), R5_EINVAL);
	if (!strstr(r5_last_error(), text))
		fail_msg("error '%s' does not say '%s'", r5_last_error(), text);
	printf("refused: %s\n", r5_last_error());
}

static void test_bad_input(void **state)
{
	(void)state;
	r5_array *ref = image(NX, NY, NZ, 1), *img = image(NX, NY, NZ, 1), *mask = block_mask();
	r5_array *flat = image(NX, NY, 1, 1), *other = image(NX, NY + 1, NZ, 1);
	reference_and_error(ref, img, in_block);
	expect_refused(ref, img, flat, "the mask's shape [40 36] is not the reference's [40 36 3]");
	mask->data[5] = 0.5f;
	expect_refused(ref, img, mask, "mask element 5 is 0.5+0i, not 0 or 1");
	mask->data[5] = 1 + 1.0f * I;
	expect_refused(ref, img, mask, "mask element 5 is 1+1i, not 0 or 1");
	for (long i = 0; i < r5_array_size(mask); i++)
		mask->data[i] = 0;
	expect_refused(ref, img, mask, "the mask holds no voxel equal to 1");
	assert_int_equal(r5_quality_check_mask(ref, mask, NULL), R5_EINVAL);
	mask->data[17] = 1;
	long voxels = 0;
	assert_int_equal(r5_quality_check_mask(ref, mask, &voxels), R5_OK);
	assert_int_equal(voxels, 1);
	img->data[17] = NAN;
	expect_refused(ref, img, mask, "the image holds NaN or infinite values (element 17)");
	expect_refused(ref, other, NULL, "reference shape [40 36 3] does not match the reconstruction's [40 37 3]");
	r5_array_free(ref), r5_array_free(img), r5_array_free(mask), r5_array_free(flat), r5_array_free(other);
}

enum { FRAMES = 4 };

static r5_array *series_image(long frames)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = NX, dims[1] = NY, dims[R5_DIM_TIME] = frames;
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	return a;
}

/* ref frame t: a smooth image times (1 + t / 4); img frame t: it with a 10 (t+1) % error in the block */
static void fill_series(r5_array *ref, r5_array *img)
{
	long plane = NX * NY;
	for (long t = 0; t < ref->dims[R5_DIM_TIME]; t++)
		for (long y = 0; y < NY; y++)
			for (long x = 0; x < NX; x++) {
				long i = t * plane + y * NX + x;
				ref->data[i] = (1 + 0.25f * t) * (0.5f + 0.4f * sinf(0.3f * x + 0.2f * y) * cosf(0.17f * y + t));
				img->data[i] = ref->data[i] * (in_block(x, y) ? 1 + 0.1f * (t + 1) : 1.0f);
			}
}

static void test_series(void **state)
{
	(void)state;
	r5_array *ref = series_image(FRAMES), *img = series_image(FRAMES);
	fill_series(ref, img);
	r5_quality_series series;
	assert_int_equal(r5_quality_compare_series(ref, img, NULL, 0, 0, &series), R5_OK);
	assert_int_equal(series.n_frames, FRAMES);
	assert_int_equal(series.truth_averaged, 0);
	long dims[R5_DIMS];
	r5_dims_copy(dims, ref->dims);
	dims[R5_DIM_TIME] = 1;
	double mean = 0;
	for (long t = 0; t < FRAMES; t++) {
		r5_array a = r5_array_view_strided(ref, dims, NULL, t * NX * NY);
		r5_array b = r5_array_view_strided(img, dims, NULL, t * NX * NY);
		r5_quality alone;
		assert_int_equal(r5_quality_compare(&a, &b, 0, &alone), R5_OK);
		const r5_quality *q = &series.frames[t];
		printf("frame %ld: nrmse %.5f psnr %.2f ssim %.5f\n", t, q->nrmse, q->psnr, q->ssim);
		assert_true(q->nrmse == alone.nrmse && q->psnr == alone.psnr && q->ssim == alone.ssim);
		if (t > 0) /* a larger error each frame */
			assert_true(q->nrmse > series.frames[t - 1].nrmse);
		mean += q->nrmse / FRAMES;
	}
	assert_float_equal(series.mean.nrmse, mean, 1e-12);
	r5_quality_series_free(&series);

	/* each frame's own least-squares factor: image frame t = (t + 1) x reference frame t */
	for (long i = 0; i < r5_array_size(img); i++)
		img->data[i] = ref->data[i] * (float)(1 + i / (NX * NY));
	assert_int_equal(r5_quality_compare_series(ref, img, NULL, 1, 0, &series), R5_OK);
	for (long t = 0; t < FRAMES; t++) {
		assert_float_equal(series.frames[t].scale, 1.0 / (t + 1), 1e-6);
		assert_true(series.frames[t].nrmse < 1e-6);
	}
	r5_quality_series_free(&series);

	/* one image against the time average of the reference's frames */
	r5_array *one = series_image(1);
	for (long i = 0; i < NX * NY; i++) {
		double sum = 0;
		for (long t = 0; t < FRAMES; t++)
			sum += cabsf(ref->data[t * NX * NY + i]);
		one->data[i] = (float)(sum / FRAMES);
	}
	assert_int_equal(r5_quality_compare_series(ref, one, NULL, 0, 0, &series), R5_OK);
	assert_int_equal(series.n_frames, 1);
	assert_int_equal(series.truth_averaged, 1);
	assert_true(series.mean.nrmse < 1e-6 && series.mean.ssim > 1 - 1e-9);
	r5_quality_series_free(&series);
	for (long i = 0; i < NX * NY; i++)
		one->data[i] = ref->data[i];
	assert_int_equal(r5_quality_compare_series(ref, one, NULL, 0, 0, &series), R5_OK);
	printf("frame 0 against the time average: nrmse %.4f\n", series.mean.nrmse);
	assert_true(series.mean.nrmse > 0.05);
	r5_quality_series_free(&series);

	/* refused: 3 frames against 4; a dimension above dim 10 */
	r5_array *three = series_image(3);
	for (long i = 0; i < r5_array_size(three); i++)
		three->data[i] = 1;
	assert_int_equal(r5_quality_compare_series(ref, three, NULL, 0, 0, &series), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "the reference has 4 frames (dim 10) but the image 3"));
	assert_null(series.frames);
	long high[R5_DIMS];
	r5_dims_copy(high, ref->dims);
	high[R5_DIM_TIME] = 2, high[R5_DIM_TIME + 1] = 2;
	long high_strides[R5_DIMS];
	r5_dims_strides(high_strides, high);
	r5_array reshaped = r5_array_view_strided(ref, high, high_strides, 0);
	assert_int_equal(r5_quality_compare_series(&reshaped, img, NULL, 0, 0, &series), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "dim 11 must be 1"));
	r5_array_free(ref), r5_array_free(img), r5_array_free(one), r5_array_free(three);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_error_inside_and_outside),
		cmocka_unit_test(test_all_ones_is_unmasked),
		cmocka_unit_test(test_leading_block),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_series),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
