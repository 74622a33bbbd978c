/* bench_nufft: the NUFFT of recon/linop/nufft.h on the CPU.
 *
 * 1. Accuracy: relative error of type 2 (forward) and type 1 (adjoint) against a direct
 *    non-uniform DFT in double, 2D 64 x 64, 2000 random points, one coil, for kernel widths
 *    4..12 at oversampling 2 and 1.25 (and the default width of each).
 * 2. Throughput: plan, set points (sort), type 2 and type 1 (execute only, best of 3) and the
 *    Toeplitz normal (kernel once, then one application), in points per second (a point = all
 *    coils of one sample): 2D 256^2, 8 coils, 10^6 points uniform in k-space and 10^6 radial
 *    (512 samples x 1954 spokes, dense centre); 3D 64^3 (grid 128^3), 10^6 uniform points, 1 and
 *    8 coils. Wall seconds, and CPU seconds of all threads for the executes (on a shared machine
 *    the wall time says what else ran; CPU time over threads is the time on idle cores).
 *
 * 3. BART (when /usr/bin/bart exists): `bart nufft` and `bart nufft -a` on the same radial case
 *    (wall time of the command, its .cfl I/O and start-up included), and the agreement of the
 *    two implementations after the best complex scale (convention check: sign, centring, units).
 *
 * 4. The issue's throughput cases (--gpu on the GPU context, --issue on the CPU context): 3D 256^3
 *    (grid 512^3, sigma 2, tolerance 1e-4: width 5), 10^8 points uniform in the cube, one coil;
 *    and 2D 256^2 x 8 coils, 10^6 uniform points, same tolerance. Plan and set points timed
 *    separately, then type 2 and type 1 execute only (warm-up, then the median of 5 or --reps, the context
 *    synchronised before each clock read), in points/s. --points N sets the 3D case's count
 *    (e.g. 10^7 where 10^8 does not fit). gpu/NOTES.md holds the predictions for the H200.
 *
 * Usage: bench_nufft [--quick | --bart | --gpu | --issue] [--points N] [--reps 1..5]   (--quick: the accuracy
 * table and the 2D uniform case only; --bart: the BART comparison only) */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include "recon/core/array.h"
#include "recon/io/cfl.h"
#include "recon/core/ctx.h"
#include "recon/linop/nufft.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds of the process, all threads (the work, whatever else shares the cores) */
static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static unsigned rng = 2024u;
static double uniform(void)
{
	rng = rng * 1103515245u + 12345u;
	return (double)((rng >> 8) & 0xffffff) / 16777216.0;
}

static void dims_of(long dims[R5_DIMS], long x, long y, long z, long c)
{
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = 1;
	dims[0] = x, dims[1] = y, dims[2] = z, dims[3] = c;
}

static int check(r5_status s, const char *what)
{
	if (s != R5_OK)
		fprintf(stderr, "bench_nufft: %s: %s\n", what, r5_last_error());
	return s == R5_OK;
}

static double rel_diff(const float complex *a, const double complex *b, long n)
{
	double d = 0, r = 0;
	for (long i = 0; i < n; i++) {
		d += cabs(a[i] - b[i]) * cabs(a[i] - b[i]);
		r += cabs(b[i]) * cabs(b[i]);
	}
	return sqrt(d / r);
}

static void accuracy_table(r5_ctx *ctx)
{
	const long N = 64, n = 2000, pix = N * N;
	long dims[R5_DIMS], sdims[R5_DIMS];
	dims_of(dims, N, N, 1, 1);
	dims_of(sdims, 1, n, 1, 1);
	float *k = malloc(sizeof(float) * 3 * n);
	double complex *y_ref = malloc(sizeof *y_ref * n), *f_ref = malloc(sizeof *f_ref * pix);
	r5_array *x = NULL, *y = NULL, *ax = NULL, *ahy = NULL;
	if (!k || !y_ref || !f_ref || !check(r5_array_alloc_work(ctx, dims, &x), "image") ||
	    !check(r5_array_alloc_work(ctx, sdims, &y), "samples") || !check(r5_array_alloc_work(ctx, sdims, &ax), "samples") ||
	    !check(r5_array_alloc_work(ctx, dims, &ahy), "image"))
		return;
	for (long j = 0; j < n; j++) {
		k[3 * j] = (float)((uniform() - 0.5) * N), k[3 * j + 1] = (float)((uniform() - 0.5) * N), k[3 * j + 2] = 0;
		y->data[j] = (float)(uniform() - 0.5) + I * (float)(uniform() - 0.5);
	}
	for (long q = 0; q < pix; q++)
		x->data[q] = (float)(uniform() - 0.5) + I * (float)(uniform() - 0.5);
	/* direct DFT in double */
	double s = 1.0 / sqrt((double)pix);
#pragma omp parallel for schedule(static)
	for (long j = 0; j < n; j++) {
		double complex sum = 0;
		for (long q = 0; q < pix; q++) {
			double arg = (k[3 * j] * (double)(q % N - N / 2) + k[3 * j + 1] * (double)(q / N - N / 2)) / N;
			sum += x->data[q] * cexp(-2.0 * R5_PI * I * arg);
		}
		y_ref[j] = s * sum;
	}
#pragma omp parallel for schedule(static)
	for (long q = 0; q < pix; q++) {
		double complex sum = 0;
		for (long j = 0; j < n; j++) {
			double arg = (k[3 * j] * (double)(q % N - N / 2) + k[3 * j + 1] * (double)(q / N - N / 2)) / N;
			sum += y->data[j] * cexp(2.0 * R5_PI * I * arg);
		}
		f_ref[q] = s * sum;
	}
	printf("## accuracy: relative error vs direct NUDFT (2D %ldx%ld, %ld random points, fp32)\n\n", N, N, n);
	printf("| sigma | width | beta | grid | type 2 | type 1 |\n|---|---|---|---|---|---|\n");
	const double sigmas[2] = {2.0, 1.25};
	for (int si = 0; si < 2; si++)
		for (int w = 3; w <= 12; w++) { /* 3: the default width */
			r5_nufft_opts o = r5_nufft_defaults;
			o.oversampling = sigmas[si];
			o.width = w == 3 ? 0 : w;
			r5_nufft_plan *p = NULL;
			r5_nufft_info info;
			if (!check(r5_nufft_plan_make(ctx, dims, &o, &p), "plan") ||
			    !check(r5_nufft_set_points(ctx, p, n, k), "points") ||
			    !check(r5_nufft_forward(ctx, p, ax, x), "forward") || !check(r5_nufft_adjoint(ctx, p, ahy, y), "adjoint")) {
				r5_nufft_plan_destroy(p);
				continue;
			}
			r5_nufft_get_info(p, &info);
			printf("| %.2f | %d%s | %.2f | %ld | %.2e | %.2e |\n", sigmas[si], info.width, w == 3 ? " (default)" : "",
			       info.beta, info.grid[0], rel_diff(ax->data, y_ref, n), rel_diff(ahy->data, f_ref, pix));
			r5_nufft_plan_destroy(p);
		}
	printf("\n");
	r5_array_free(x), r5_array_free(y), r5_array_free(ax), r5_array_free(ahy);
	free(k), free(y_ref), free(f_ref);
}

struct timing {
	double plan, points, type2, type1, toep_make, toep_apply, cpu2, cpu1;
};

static void time_case(r5_ctx *ctx, const char *name, const long dims[R5_DIMS], long n_read, long n_lines,
		      const float *k)
{
	long n = n_read * n_lines, sdims[R5_DIMS];
	dims_of(sdims, 1, n_read, n_lines, dims[3]);
	r5_array *x = NULL, *y = NULL, *out = NULL;
	r5_nufft_plan *p = NULL;
	struct timing t = {0};
	t.type1 = t.type2 = t.toep_apply = t.cpu1 = t.cpu2 = 1e30;
	if (!check(r5_array_alloc_work(ctx, dims, &x), "image") || !check(r5_array_alloc_work(ctx, sdims, &y), "samples") ||
	    !check(r5_array_alloc_work(ctx, dims, &out), "image"))
		goto done;
	for (long i = 0; i < r5_array_size(x); i++)
		x->data[i] = (float)(uniform() - 0.5);
	double t0 = now_s();
	if (!check(r5_nufft_plan_make(ctx, dims, NULL, &p), "plan"))
		goto done;
	t.plan = now_s() - t0;
	t0 = now_s();
	if (!check(r5_nufft_set_points(ctx, p, n, k), "points"))
		goto done;
	t.points = now_s() - t0;
	for (int r = 0; r < 3; r++) {
		t0 = now_s();
		double c0 = cpu_s();
		if (!check(r5_nufft_forward(ctx, p, y, x), "forward"))
			goto done;
		double t2 = now_s() - t0, c2 = cpu_s() - c0;
		t0 = now_s();
		c0 = cpu_s();
		if (!check(r5_nufft_adjoint(ctx, p, out, y), "adjoint"))
			goto done;
		double t1 = now_s() - t0, c1 = cpu_s() - c0;
		t.cpu2 = c2 < t.cpu2 ? c2 : t.cpu2;
		t.cpu1 = c1 < t.cpu1 ? c1 : t.cpu1;
		t.type2 = t2 < t.type2 ? t2 : t.type2;
		t.type1 = t1 < t.type1 ? t1 : t.type1;
	}
	t0 = now_s();
	if (!check(r5_nufft_toeplitz(ctx, p, NULL), "Toeplitz"))
		goto done;
	t.toep_make = now_s() - t0;
	for (int r = 0; r < 2; r++) {
		t0 = now_s();
		if (!check(r5_nufft_normal(ctx, p, out, x), "normal"))
			goto done;
		double ta = now_s() - t0;
		t.toep_apply = ta < t.toep_apply ? ta : t.toep_apply;
	}
	r5_nufft_info info;
	r5_nufft_get_info(p, &info);
	printf("| %s | %ld | %ld | %ld^%d | %.3f | %.3f | %.3f (%.2e/s) | %.3f (%.2e/s) | %.2f / %.2f | %.2f | %.3f | "
	       "%ld |\n", name, n, dims[3], info.grid[0], info.dims, t.plan, t.points, t.type2, n / t.type2, t.type1,
	       n / t.type1, t.cpu2, t.cpu1, t.toep_make, t.toep_apply, info.bytes >> 20);
	fflush(stdout);
done:
	r5_nufft_plan_destroy(p);
	r5_array_free(x), r5_array_free(y), r5_array_free(out);
}

static float *uniform_points(const long dims[R5_DIMS], long n)
{
	float *k = malloc(sizeof(float) * 3 * n);
	if (!k)
		return NULL;
	for (long j = 0; j < n; j++)
		for (int d = 0; d < 3; d++)
			k[3 * j + d] = dims[d] > 1 ? (float)((uniform() - 0.5) * dims[d]) : 0.0f;
	return k;
}

/* golden-angle radial spokes of n_read samples over [-N/2, N/2) */
static float *radial_points(long N, long n_read, long n_spokes)
{
	float *k = malloc(sizeof(float) * 3 * n_read * n_spokes);
	if (!k)
		return NULL;
	for (long l = 0; l < n_spokes; l++) {
		double a = fmod(l * 111.246117975 * R5_PI / 180.0, 2 * R5_PI);
		for (long r = 0; r < n_read; r++) {
			double kr = ((double)r - n_read / 2) * N / n_read;
			float *p = k + 3 * (r + n_read * l);
			p[0] = (float)(kr * cos(a)), p[1] = (float)(kr * sin(a)), p[2] = 0.0f;
			for (int d = 0; d < 2; d++)
				if (p[d] >= N / 2.0f)
					p[d] = nextafterf(N / 2.0f, 0.0f);
		}
	}
	return k;
}

/* relative difference of a from b after the best complex scale alpha (a ~ alpha b) */
static double scaled_diff(const r5_array *a, const r5_array *b, double complex *alpha)
{
	double complex ab = 0;
	double bb = 0, d = 0, aa = 0;
	for (long i = 0; i < r5_array_size(a); i++) {
		ab += conj(b->data[i]) * a->data[i];
		bb += cabs(b->data[i]) * cabs(b->data[i]);
	}
	*alpha = ab / bb;
	for (long i = 0; i < r5_array_size(a); i++) {
		d += cabs(a->data[i] - *alpha * b->data[i]) * cabs(a->data[i] - *alpha * b->data[i]);
		aa += cabs(a->data[i]) * cabs(a->data[i]);
	}
	return sqrt(d / aa);
}

static double run_timed(const char *cmd)
{
	double t0 = now_s();
	int rc = system(cmd);
	return rc == 0 ? now_s() - t0 : -1.0;
}

static void bart_compare(r5_ctx *ctx, const long dims[R5_DIMS], long n_read, long n_lines, const float *k)
{
	char dir[] = "/tmp/bench_nufft_XXXXXX", cmd[1024], path[256];
	if (access("/usr/bin/bart", X_OK) != 0 || !mkdtemp(dir))
		return;
	long tdims[R5_DIMS], sdims[R5_DIMS], n = n_read * n_lines;
	dims_of(tdims, 3, n_read, n_lines, 1);
	dims_of(sdims, 1, n_read, n_lines, dims[3]);
	r5_array *traj = NULL, *x = NULL, *y = NULL, *ours_y = NULL, *ours_x = NULL, *bart_y = NULL, *bart_x = NULL;
	r5_nufft_plan *p = NULL;
	if (!check(r5_array_alloc_host(tdims, &traj), "traj") || !check(r5_array_alloc_host(dims, &x), "image") ||
	    !check(r5_array_alloc_host(sdims, &y), "samples") || !check(r5_array_alloc_host(sdims, &ours_y), "samples") ||
	    !check(r5_array_alloc_host(dims, &ours_x), "image"))
		goto done;
	for (long i = 0; i < 3 * n; i++)
		traj->data[i] = k[i];
	for (long i = 0; i < r5_array_size(x); i++)
		x->data[i] = (float)(uniform() - 0.5) + I * (float)(uniform() - 0.5);
	for (long i = 0; i < r5_array_size(y); i++)
		y->data[i] = (float)(uniform() - 0.5) + I * (float)(uniform() - 0.5);
	snprintf(path, sizeof path, "%s/traj", dir);
	if (!check(r5_cfl_write(path, traj), "traj.cfl"))
		goto done;
	snprintf(path, sizeof path, "%s/x", dir);
	if (!check(r5_cfl_write(path, x), "x.cfl"))
		goto done;
	snprintf(path, sizeof path, "%s/y", dir);
	if (!check(r5_cfl_write(path, y), "y.cfl"))
		goto done;
	double t_ours2 = now_s();
	if (!check(r5_nufft_plan_make(ctx, dims, NULL, &p), "plan") || !check(r5_nufft_set_points(ctx, p, n, k), "points"))
		goto done;
	if (!check(r5_nufft_forward(ctx, p, ours_y, x), "forward"))
		goto done;
	t_ours2 = now_s() - t_ours2; /* plan + set points + forward: what one bart call does */
	double t_ours1 = now_s();
	if (!check(r5_nufft_adjoint(ctx, p, ours_x, y), "adjoint"))
		goto done;
	t_ours1 = now_s() - t_ours1;
	snprintf(cmd, sizeof cmd, "bart nufft %s/traj %s/x %s/bart_y > /dev/null 2>&1", dir, dir, dir);
	double t_bart2 = run_timed(cmd);
	snprintf(cmd, sizeof cmd, "bart nufft -a -d %ld:%ld:%ld %s/traj %s/y %s/bart_x > /dev/null 2>&1", dims[0], dims[1],
		 dims[2], dir, dir, dir);
	double t_bart1 = run_timed(cmd);
	snprintf(path, sizeof path, "%s/bart_y", dir);
	if (t_bart2 < 0 || !check(r5_cfl_read(path, &bart_y), "bart forward output"))
		goto done;
	snprintf(path, sizeof path, "%s/bart_x", dir);
	if (t_bart1 < 0 || !check(r5_cfl_read(path, &bart_x), "bart adjoint output"))
		goto done;
	double complex a2, a1;
	double e2 = scaled_diff(ours_y, bart_y, &a2), e1 = scaled_diff(ours_x, bart_x, &a1);
	printf("## vs BART (bart nufft, same trajectory and data: 2D %ldx%ld radial, %ld points, %ld coils)\n\n", dims[0],
	       dims[1], n, dims[3]);
	printf("| transform | recon5t s | bart s (whole command) | ours = alpha bart: alpha | rel. diff after alpha |\n"
	       "|---|---|---|---|---|\n");
	printf("| type 2 (forward) | %.3f (incl. plan + set points) | %.3f | %.4f%+.4fi | %.2e |\n", t_ours2, t_bart2,
	       creal(a2), cimag(a2), e2);
	printf("| type 1 (adjoint) | %.3f | %.3f | %.4f%+.4fi | %.2e |\n\n", t_ours1, t_bart1, creal(a1), cimag(a1), e1);
done:
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_nufft: could not remove %s\n", dir);
	r5_nufft_plan_destroy(p);
	r5_array_free(traj), r5_array_free(x), r5_array_free(y), r5_array_free(ours_y), r5_array_free(ours_x);
	r5_array_free(bart_y), r5_array_free(bart_x);
}

static int issue_reps = 5; /* --reps N (1..5) */

static double median(double *t, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (t[j] < t[i]) {
				double x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[n / 2];
}

/* One issue case on ctx: host inputs made here, moved where the context computes. */
static void issue_case(r5_ctx *ctx, const char *name, const long dims[R5_DIMS], long n)
{
	long sdims[R5_DIMS];
	dims_of(sdims, 1, n, 1, dims[3]);
	float *k = uniform_points(dims, n);
	r5_array *xh = NULL, *x = NULL, *y = NULL, *out = NULL;
	r5_nufft_plan *p = NULL;
	r5_nufft_opts o = r5_nufft_defaults;
	o.tolerance = 1e-4;
	double t2[5], t1[5], c2[5], c1[5];
	if (!k || !check(r5_array_alloc_host(dims, &xh), "image"))
		goto done;
	for (long i = 0; i < r5_array_size(xh); i++)
		xh->data[i] = (float)(uniform() - 0.5) + I * (float)(uniform() - 0.5);
	if (!check(r5_array_to_work(ctx, xh, &x), "image upload") || !check(r5_array_alloc_work(ctx, sdims, &y), "samples") ||
	    !check(r5_array_alloc_work(ctx, dims, &out), "image"))
		goto done;
	double t0 = now_s();
	if (!check(r5_nufft_plan_make(ctx, dims, &o, &p), "plan") || !check(r5_ctx_sync(ctx), "sync"))
		goto done;
	double t_plan = now_s() - t0;
	t0 = now_s();
	if (!check(r5_nufft_set_points(ctx, p, n, k), "points") || !check(r5_ctx_sync(ctx), "sync"))
		goto done;
	double t_points = now_s() - t0;
	/* warm-up: the grid, the FFT plans and (on a GPU) module load stay out of the numbers */
	if (!check(r5_nufft_forward(ctx, p, y, x), "forward") || !check(r5_nufft_adjoint(ctx, p, out, y), "adjoint") ||
	    !check(r5_ctx_sync(ctx), "sync"))
		goto done;
	for (int r = 0; r < issue_reps; r++) {
		t0 = now_s();
		double u0 = cpu_s();
		if (!check(r5_nufft_forward(ctx, p, y, x), "forward") || !check(r5_ctx_sync(ctx), "sync"))
			goto done;
		t2[r] = now_s() - t0, c2[r] = cpu_s() - u0;
		t0 = now_s();
		u0 = cpu_s();
		if (!check(r5_nufft_adjoint(ctx, p, out, y), "adjoint") || !check(r5_ctx_sync(ctx), "sync"))
			goto done;
		t1[r] = now_s() - t0, c1[r] = cpu_s() - u0;
	}
	r5_nufft_info info;
	r5_nufft_get_info(p, &info);
	double m2 = median(t2, issue_reps), m1 = median(t1, issue_reps);
	printf("| %s | %ld | %ld | %ld^%d | %d | %.3f | %.3f | %.4f (%.2e/s) | %.4f (%.2e/s) | %.2f / %.2f | %ld |\n", name,
	       n, dims[3], info.grid[0], info.dims, info.width, t_plan, t_points, m2, n / m2, m1, n / m1, median(c2, issue_reps),
	       median(c1, issue_reps), info.bytes >> 20);
	fflush(stdout);
done:
	r5_nufft_plan_destroy(p);
	r5_array_free(xh), r5_array_free(x), r5_array_free(y), r5_array_free(out);
	free(k);
}

static int issue_cases(const char *backend, long n3d)
{
	r5_ctx *ctx = NULL;
	if (!check(r5_ctx_create(&ctx, backend, 0), "context"))
		return 1;
	printf("# bench_nufft: the issue's cases on %s\n\n", r5_ctx_describe(ctx));
	printf("tolerance 1e-4, sigma 2; execute only, median of %d after a warm-up; points/s = samples of all coils "
	       "per second; CPU-s = process CPU seconds (host threads) per execute\n\n", issue_reps);
	printf("| case | points | coils | grid | width | plan s | set points s | type 2 s | type 1 s | type 2 / 1 CPU-s "
	       "| MiB held |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
	long dims[R5_DIMS];
	dims_of(dims, 256, 256, 256, 1);
	issue_case(ctx, "3D 256^3 uniform", dims, n3d);
	dims_of(dims, 256, 256, 1, 8);
	issue_case(ctx, "2D 256^2 x 8 coils uniform", dims, 1000000);
	printf("\n");
	r5_ctx_destroy(ctx);
	return 0;
}

int main(int argc, char **argv)
{
	long n3d = 100000000;
	for (int a = 1; a + 1 < argc; a++)
		if (strcmp(argv[a], "--points") == 0)
			n3d = strtol(argv[a + 1], NULL, 10);
		else if (strcmp(argv[a], "--reps") == 0)
			issue_reps = (int)strtol(argv[a + 1], NULL, 10);
	if (issue_reps < 1 || issue_reps > 5 || n3d < 1) {
		fprintf(stderr, "bench_nufft: --reps takes 1..5, --points a positive count\n");
		return 2;
	}
	if (argc > 1 && strcmp(argv[1], "--gpu") == 0)
		return issue_cases("gpu", n3d);
	if (argc > 1 && strcmp(argv[1], "--issue") == 0)
		return issue_cases("cpu", n3d);
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0, bart_only = argc > 1 && strcmp(argv[1], "--bart") == 0;
	r5_ctx *ctx = NULL;
	if (!check(r5_ctx_create(&ctx, "cpu", 0), "context"))
		return 1;
#ifdef _OPENMP
	int threads = omp_get_max_threads();
#else
	int threads = 1;
#endif
	printf("# bench_nufft: CPU, %d threads (%s)\n\n", threads, r5_ctx_describe(ctx));
	long dims[R5_DIMS];
	float *k = NULL;
	if (bart_only)
		goto bart;
	accuracy_table(ctx);
	printf("## throughput (default width, sigma 2; execute only, best of 3; points/s = samples of all coils "
	       "per second)\n\n");
	printf("| case | points | coils | grid | plan s | set points s | type 2 s | type 1 s | type 2 / 1 CPU-s | "
	       "Toeplitz kernel s | Toeplitz apply s | MiB held |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	dims_of(dims, 256, 256, 1, 8);
	k = uniform_points(dims, 1000000);
	if (k)
		time_case(ctx, "2D 256^2 uniform", dims, 1000000, 1, k);
	free(k);
	if (!quick) {
		k = radial_points(256, 512, 1954);
		if (k)
			time_case(ctx, "2D 256^2 radial", dims, 512, 1954, k);
		free(k);
		dims_of(dims, 64, 64, 64, 1);
		k = uniform_points(dims, 1000000);
		if (k) {
			time_case(ctx, "3D 64^3 uniform", dims, 1000000, 1, k);
			dims[3] = 8;
			time_case(ctx, "3D 64^3 uniform", dims, 1000000, 1, k);
		}
		free(k);
		printf("\n");
	bart:
		dims_of(dims, 256, 256, 1, 8);
		k = radial_points(256, 512, 1954);
		if (k)
			bart_compare(ctx, dims, 512, 1954, k);
		free(k);
	}
	r5_ctx_destroy(ctx);
	return 0;
}
