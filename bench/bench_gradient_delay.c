/* bench_gradient_delay: RING gradient-delay estimation (recon/calib/gradient_delay.h) on the real
 * radial cardiac set (../shared/data/gpunufft-radial-cardiac: 256 samples x 25 spokes over 360
 * degrees, 12 coils) side by side with BART (`bart estdelay`, Block/Moussavi opposing spokes,
 * and `bart estdelay -R`, RING), and the effect of each correction on the gridded image:
 * ramp-weighted adjoint NUFFT with the trajectory corrected by each delay (r5_traj_apply_delay
 * = bart traj -q), rss over coils; the relative difference between the images corrected by our
 * delays and by BART's RING delays, and against the uncorrected image. With an output folder,
 * PNGs of the four images.
 *
 * The set's trajectory reaches k = +128.0 (sample 0 of each spoke), outside the NUFFT's
 * [-128, 128) for a 256 image: it is gridded scaled by 255/256 (its samples are 256/255 apart,
 * so they become exactly 1 apart; the image's FOV changes by 0.4 %). Delays are in readout
 * samples either way.
 *
 * Usage: bench_gradient_delay [DATA_DIR [PNG_DIR]]   (default ../shared/data/gpunufft-radial-cardiac) */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recon/calib/gradient_delay.h"
#include "recon/core/ctx.h"
#include "recon/io/cfl.h"
#include "recon/io/png.h"
#include "recon/linop/density.h"
#include "recon/linop/nufft.h"
#include "recon/linop/traj.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* rss of the ramp-weighted adjoint of samples at coords (n_read x n_spokes), image N x N */
static r5_status grid(r5_ctx *ctx, const r5_array *ksp, const float *coords, long N, r5_array **out)
{
	long n_read = ksp->dims[1], n_spokes = ksp->dims[2], C = ksp->dims[3], n = n_read * n_spokes;
	long idims[R5_DIMS], odims[R5_DIMS];
	r5_dims_ones(idims);
	idims[0] = idims[1] = N, idims[3] = C;
	r5_dims_ones(odims);
	odims[0] = odims[1] = N;
	float *w = malloc(sizeof(float) * (size_t)n);
	r5_array *y = NULL, *img = NULL;
	r5_nufft_plan *plan = NULL;
	if (!w)
		return r5_set_error(R5_ENOMEM, "bench: weights");
	R5_TRY(r5_density_ramp(idims, n_read, n_spokes, coords, w));
	R5_TRY(r5_array_zeros(ctx, R5_HOST, ksp->dims, &y));
	R5_TRY(r5_array_zeros(ctx, R5_HOST, idims, &img));
	R5_TRY(r5_array_zeros(ctx, R5_HOST, odims, out));
	const float complex *src = ksp->data;
	float complex *dst = y->data, *o = (*out)->data;
	for (long c = 0; c < C; c++)
		for (long j = 0; j < n; j++)
			dst[j + n * c] = src[j + n * c] * w[j];
	R5_TRY(r5_nufft_plan_make(ctx, idims, NULL, &plan));
	R5_TRY(r5_nufft_set_points(ctx, plan, n, coords));
	R5_TRY(r5_nufft_adjoint(ctx, plan, img, y));
	const float complex *v = img->data;
	for (long p = 0; p < N * N; p++) {
		double ss = 0.0;
		for (long c = 0; c < C; c++)
			ss += pow(cabs(v[p + N * N * c]), 2);
		o[p] = (float)sqrt(ss);
	}
	r5_nufft_plan_destroy(plan);
	r5_array_free(y);
	r5_array_free(img);
	free(w);
	return R5_OK;
}

static double rel_diff(const r5_array *a, const r5_array *b)
{
	const float complex *x = a->data, *y = b->data;
	double e = 0.0, n = 0.0;
	for (long i = 0; i < r5_array_size(a); i++)
		e += pow(cabs(x[i] - y[i]), 2), n += pow(cabs(y[i]), 2);
	return sqrt(e / n);
}

/* bart estdelay [-R] output "x:y:xy"; 0 when bart is absent or fails */
static int bart_delay(const char *dir, const char *opt, float d[3])
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "bart estdelay %s '%s/traj' '%s/ksp' 2>/dev/null", opt, dir, dir);
	FILE *p = popen(cmd, "r");
	if (!p)
		return 0;
	int ok = fscanf(p, "%f:%f:%f", &d[0], &d[1], &d[2]) == 3;
	return pclose(p) == 0 && ok;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "../shared/data/gpunufft-radial-cardiac";
	const char *png = argc > 2 ? argv[2] : NULL;
	char path[1100];
	r5_array *ksp = NULL, *traj = NULL;
	r5_ctx *ctx = NULL;
	snprintf(path, sizeof path, "%s/ksp", dir);
	if (r5_cfl_read(path, &ksp) != R5_OK) {
		fprintf(stderr, "bench_gradient_delay: %s (skipped)\n", r5_last_error());
		return 77;
	}
	snprintf(path, sizeof path, "%s/traj", dir);
	if (r5_cfl_read(path, &traj) != R5_OK || r5_ctx_create(&ctx, "cpu", 0) != R5_OK) {
		fprintf(stderr, "bench_gradient_delay: %s\n", r5_last_error());
		return 1;
	}
	long n_read = ksp->dims[1], n_spokes = ksp->dims[2], n = n_read * n_spokes, N = n_read;
	float *nominal = malloc(sizeof(float) * 3 * (size_t)n), *k = malloc(sizeof(float) * 3 * (size_t)n);
	const float complex *t = traj->data;
	for (long j = 0; j < 3 * n; j++)
		nominal[j] = crealf(t[j]) * (255.0f / 256.0f);
	float ours[3], residual, bart_block[3], bart_ring[3];
	double t0 = now_s();
	if (r5_gradient_delay_ring(ksp, nominal, n_read, n_spokes, NULL, NULL, ours, &residual) != R5_OK) {
		fprintf(stderr, "bench_gradient_delay: %s\n", r5_last_error());
		return 1;
	}
	double t_ours = now_s() - t0;
	printf("%ld samples x %ld spokes x %ld coils\n", n_read, n_spokes, ksp->dims[3]);
	printf("| method | Sx | Sy | Sxy | time |\n|---|---|---|---|---|\n");
	printf("| recon5t RING | %.4f | %.4f | %.4f | %.3f s (fit residual %.3f samples) |\n", ours[0], ours[1], ours[2],
	       t_ours, residual);
	int have_block = bart_delay(dir, "", bart_block), have_ring = bart_delay(dir, "-R", bart_ring);
	if (have_block)
		printf("| bart estdelay (opposing spokes) | %.4f | %.4f | %.4f | |\n", bart_block[0], bart_block[1],
		       bart_block[2]);
	if (have_ring)
		printf("| bart estdelay -R (RING) | %.4f | %.4f | %.4f | |\n", bart_ring[0], bart_ring[1], bart_ring[2]);
	r5_array *img[4] = {NULL};
	const char *names[4] = {"uncorrected", "recon5t_ring", "bart_ring", "bart_block"};
	const float zero[3] = {0, 0, 0}, *delays[4] = {zero, ours, bart_ring, bart_block};
	for (int i = 0; i < 4; i++) {
		if ((i == 2 && !have_ring) || (i == 3 && !have_block))
			continue;
		memcpy(k, nominal, sizeof(float) * 3 * (size_t)n);
		if (r5_traj_apply_delay(n_read, n_spokes, delays[i], 0, k) != R5_OK || grid(ctx, ksp, k, N, &img[i]) != R5_OK) {
			fprintf(stderr, "bench_gradient_delay: %s\n", r5_last_error());
			return 1;
		}
		if (png) {
			snprintf(path, sizeof path, "%s/%s.png", png, names[i]);
			if (r5_png_write_magnitude(path, img[i]) != R5_OK)
				fprintf(stderr, "bench_gradient_delay: %s\n", r5_last_error());
		}
	}
	printf("\ngridded rss (ramp), relative difference ||a - b|| / ||b||:\n");
	for (int i = 1; i < 4; i++)
		if (img[i])
			printf("  %-12s vs uncorrected: %.4f\n", names[i], rel_diff(img[i], img[0]));
	if (img[2])
		printf("  recon5t_ring vs bart_ring:   %.4f\n", rel_diff(img[1], img[2]));
	if (img[3])
		printf("  recon5t_ring vs bart_block:  %.4f\n", rel_diff(img[1], img[3]));
	for (int i = 0; i < 4; i++)
		r5_array_free(img[i]);
	free(nominal);
	free(k);
	r5_array_free(ksp);
	r5_array_free(traj);
	r5_ctx_destroy(ctx);
	return 0;
}
