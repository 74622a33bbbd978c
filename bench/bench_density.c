/* bench_density: time of the density compensation of recon/linop/density.h on the CPU — the
 * radial ramp, and Pipe-Menon per iteration (one spread + one interpolation of all points on
 * the NUFFT plan's oversampled grid, plus the plan and the sort once) — for 2D 256^2 radial
 * (512 samples x 402 spokes: 2x readout, pi/2 N spokes), a 2D spiral (16 interleaves x 8192) and
 * 3D 64^3 kooshball (128 x 6434 spokes, golden means), and the real spiral trajectory of
 * ../shared/data/kspace-precond-spiral (3 interleaves x 3996, image 320^2) when it is there; wall
 * and CPU seconds (OMP threads; on a shared machine wall says what else ran), and the residual
 * after the iterations.
 *
 * Usage: bench_density [iters [SPIRAL_DIR]]   (default 10, ../shared/data/kspace-precond-spiral) */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "recon/core/ctx.h"
#include "recon/core/dims.h"
#include "recon/io/cfl.h"
#include "recon/linop/density.h"
#include "recon/linop/traj.h"

static double wall_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) { return (double)clock() / CLOCKS_PER_SEC; }

static int run_case(r5_ctx *ctx, const char *name, const long idims[R5_DIMS], long n_read, long n_lines,
		    const float *k, int radial, int iters)
{
	long n = n_read * n_lines;
	float *w = malloc(sizeof(float) * (size_t)n), *res = malloc(sizeof(float) * (size_t)iters);
	if (!w || !res)
		return 1;
	double ramp_wall = 0.0;
	if (radial) {
		double t0 = wall_s();
		if (r5_density_ramp(idims, n_read, n_lines, k, w) != R5_OK)
			return fprintf(stderr, "%s\n", r5_last_error()), 1;
		ramp_wall = wall_s() - t0;
	}
	double t0 = wall_s(), c0 = cpu_s();
	if (r5_density_pipe_menon_ex(ctx, idims, n, k, iters, NULL, w, res) != R5_OK)
		return fprintf(stderr, "%s\n", r5_last_error()), 1;
	double wall = wall_s() - t0, cpu = cpu_s() - c0;
	char ramp[32] = "-";
	if (radial)
		snprintf(ramp, sizeof ramp, "%.1f ms", 1e3 * ramp_wall);
	printf("| %s | %ld | %s | %.3f s | %.3f s | %.4f s | %.1e -> %.1e |\n", name, n, ramp, wall, cpu,
	       wall / iters, res[0], res[iters - 1]);
	free(w);
	free(res);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 10;
	if (iters < 1)
		iters = 10;
	r5_ctx *ctx = NULL;
	if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK)
		return fprintf(stderr, "%s\n", r5_last_error()), 1;
	printf("Pipe-Menon, %d iterations (plan and sort included)\n", iters);
	printf("| case | points | ramp (wall) | Pipe-Menon wall | CPU (all threads) | wall per iteration | residual |\n");
	printf("|---|---|---|---|---|---|---|\n");
	long idims[R5_DIMS];
	r5_dims_ones(idims);
	idims[0] = idims[1] = 256;
	float *k = malloc(sizeof(float) * 3 * 512 * 402);
	if (!k || r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, 512, 402, 0, 128.0, k) != R5_OK)
		return 1;
	if (run_case(ctx, "2D 256^2 golden radial 512 x 402", idims, 512, 402, k, 1, iters))
		return 1;
	free(k);
	k = malloc(sizeof(float) * 3 * 8192 * 16);
	if (!k || r5_traj_spiral(8192, 16, 128.0, 16.0, 1.5, k) != R5_OK)
		return 1;
	if (run_case(ctx, "2D 256^2 spiral 16 x 8192 (alpha 1.5)", idims, 8192, 16, k, 0, iters))
		return 1;
	free(k);
	idims[0] = idims[1] = idims[2] = 64;
	k = malloc(sizeof(float) * 3 * 128 * 6434);
	if (!k || r5_traj_radial(R5_TRAJ_KOOSH_GOLDEN_MEANS, 0, 128, 6434, 0, 32.0, k) != R5_OK)
		return 1;
	if (run_case(ctx, "3D 64^3 kooshball 128 x 6434", idims, 128, 6434, k, 1, iters))
		return 1;
	free(k);
	char path[1100];
	snprintf(path, sizeof path, "%s/traj", argc > 2 ? argv[2] : "../shared/data/kspace-precond-spiral");
	r5_array *traj = NULL;
	if (r5_cfl_read(path, &traj) == R5_OK) {
		long n_read = traj->dims[1], n_lines = traj->dims[2];
		k = malloc(sizeof(float) * 3 * (size_t)(n_read * n_lines));
		const float complex *t = traj->data;
		for (long j = 0; k && j < 3 * n_read * n_lines; j++)
			k[j] = crealf(t[j]);
		r5_dims_ones(idims);
		idims[0] = idims[1] = 320;
		if (!k || run_case(ctx, "2D 320^2 real spiral 3 x 3996", idims, n_read, n_lines, k, 0, iters))
			return 1;
		free(k);
		r5_array_free(traj);
	} else {
		printf("(real spiral: %s; skipped)\n", r5_last_error());
	}
	r5_ctx_destroy(ctx);
	return 0;
}
