/* CPU back end: the NUFFT tile method's slots (nufft_spread, nufft_interp, nufft_deapod,
 * nufft_toep_place), the same algorithm as the CUDA twin (gpu/nufft_cuda.cu) on the per-element
 * functions of recon/core/nufft_math.h, so that the device path of recon/linop/nufft.c can be
 * checked on a machine without a GPU (nufft.h: method R5_NUFFT_METHOD_TILES). The CPU plan's own
 * spreader (nufft.c, slabs, no atomics) is the fast path on the host; this one is the reference
 * for the GPU's: a subproblem per OpenMP iteration, its tile in a thread-private buffer (the
 * GPU's shared memory) holding all coils, then the tile added to the grid with plain adds in its
 * core and atomic adds in its halo, as on the device. Results are not bitwise reproducible across
 * thread counts (the atomics' order), like the GPU's. */
#include <complex.h>
#include <stdlib.h>

#include "../core/nufft_math.h"
#include "cpu_backend.h"

static void atomic_add(float *dst, float v)
{
#pragma omp atomic
	*dst += v;
}

/* One subproblem: spread its points into tile (cells x C complex, zeroed here), then add the
 * tile to the grid. */
static void spread_subproblem(const struct r5_nufft_geom *g, const struct r5_nufft_points *pts, long s,
			      const float complex *samples, float *grid, float *tile)
{
	long bin = pts->sub_bin[s], b[3], origin[3], len[3], C = g->C, n = g->n_points;
	int exclusive = g->core_ok && (s == 0 || pts->sub_bin[s - 1] != bin) &&
			(s == pts->n_sub - 1 || pts->sub_bin[s + 1] != bin);
	r5_nufft_tile(g, bin, b, origin, len);
	long cells = len[0] * len[1] * len[2];
	for (long q = 0; q < 2 * cells * C; q++)
		tile[q] = 0.0f;
	int w = g->width, D = g->dims, nz = D == 3 ? w : 1;
	for (long i = pts->sub_first[s]; i < pts->sub_first[s + 1]; i++) {
		float wt[3][R5_NUFFT_MAX_WIDTH];
		long st[3] = {0, 0, 0}, l[3];
		int inside = 1;
		r5_nufft_point_weights(g, pts->offset + i * D, wt);
		for (int d = 0; d < 3; d++) {
			st[d] = d < D ? pts->start[i * D + d] : 0;
			l[d] = st[d] - origin[d];
			inside = inside && l[d] >= 0 && l[d] + (d < D ? w : 1) <= len[d];
		}
		const float complex *v = samples + pts->order[i];
		for (int a = 0; a < nz; a++)
			for (int bb = 0; bb < w; bb++) {
				float w21 = wt[2][a] * wt[1][bb];
				for (int t = 0; t < w; t++) {
					float wgt = w21 * wt[0][t];
					if (inside) {
						float *cell = tile + 2 * C * (((l[2] + a) * len[1] + l[1] + bb) * len[0] + l[0] + t);
						for (long c = 0; c < C; c++) {
							cell[2 * c] += wgt * crealf(v[c * n]);
							cell[2 * c + 1] += wgt * cimagf(v[c * n]);
						}
					} else {
						long gc = r5_nufft_mod(st[0] + t, g->M[0]) +
							  g->M[0] * (r5_nufft_mod(st[1] + bb, g->M[1]) +
								     g->M[1] * r5_nufft_mod(st[2] + a, g->M[2]));
						for (long c = 0; c < C; c++) {
							atomic_add(grid + 2 * (gc * C + c), wgt * crealf(v[c * n]));
							atomic_add(grid + 2 * (gc * C + c) + 1, wgt * cimagf(v[c * n]));
						}
					}
				}
			}
	}
	for (long q = 0; q < cells; q++) {
		long l[3] = {q % len[0], (q / len[0]) % len[1], q / (len[0] * len[1])};
		long gc = r5_nufft_mod(origin[0] + l[0], g->M[0]) +
			  g->M[0] * (r5_nufft_mod(origin[1] + l[1], g->M[1]) + g->M[1] * r5_nufft_mod(origin[2] + l[2], g->M[2]));
		int core = exclusive && r5_nufft_tile_core(g, b, l);
		const float *src = tile + 2 * C * q;
		float *dst = grid + 2 * C * gc;
		for (long c = 0; c < 2 * C; c++) {
			if (src[c] == 0.0f)
				continue;
			if (core)
				dst[c] += src[c];
			else
				atomic_add(dst + c, src[c]);
		}
	}
}

r5_status r5_cpu_nufft_spread(void *state, const struct r5_nufft_geom *g, const struct r5_nufft_points *pts,
			      const float complex *samples, float complex *grid)
{
	(void)state;
	long cells = 1;
	for (int d = 0; d < 3; d++)
		cells *= d < g->dims ? g->bin[d] + g->width : 1;
	int failed = 0;
#pragma omp parallel reduction(| : failed)
	{
		float *tile = malloc(sizeof(float) * 2 * (size_t)(cells * g->C));
		failed = !tile;
#pragma omp for schedule(dynamic, 4)
		for (long s = 0; s < pts->n_sub; s++)
			if (tile)
				spread_subproblem(g, pts, s, samples, (float *)grid, tile);
		free(tile);
	}
	return failed ? r5_set_error(R5_ENOMEM, "cpu nufft_spread: a tile of %ld cells x %ld coils", cells, g->C)
		      : R5_OK;
}

r5_status r5_cpu_nufft_interp(void *state, const struct r5_nufft_geom *g, const struct r5_nufft_points *pts,
			      const float complex *grid, float complex *samples)
{
	(void)state;
	long n = g->n_points, C = g->C;
	int w = g->width, D = g->dims, nz = D == 3 ? w : 1, failed = 0;
#pragma omp parallel reduction(| : failed)
	{
		float complex *acc = malloc(sizeof *acc * (size_t)C);
		failed = !acc;
#pragma omp for schedule(static, 1024)
		for (long i = 0; i < n; i++) {
			if (!acc)
				continue;
			float wt[3][R5_NUFFT_MAX_WIDTH];
			long st[3] = {0, 0, 0}, x0[R5_NUFFT_MAX_WIDTH];
			r5_nufft_point_weights(g, pts->offset + i * D, wt);
			for (int d = 0; d < D; d++)
				st[d] = pts->start[i * D + d];
			for (int t = 0; t < w; t++)
				x0[t] = r5_nufft_mod(st[0] + t, g->M[0]);
			for (long c = 0; c < C; c++)
				acc[c] = 0.0f;
			for (int a = 0; a < nz; a++)
				for (int bb = 0; bb < w; bb++) {
					float w21 = wt[2][a] * wt[1][bb];
					long row = g->M[0] * (r5_nufft_mod(st[1] + bb, g->M[1]) +
							      g->M[1] * r5_nufft_mod(st[2] + a, g->M[2]));
					for (int t = 0; t < w; t++) {
						const float complex *cell = grid + C * (row + x0[t]);
						float wgt = w21 * wt[0][t];
						for (long c = 0; c < C; c++)
							acc[c] += wgt * cell[c];
					}
				}
			for (long c = 0; c < C; c++)
				samples[pts->order[i] + c * n] = acc[c];
		}
		free(acc);
	}
	return failed ? r5_set_error(R5_ENOMEM, "cpu nufft_interp: %ld coil values of a thread", C) : R5_OK;
}

r5_status r5_cpu_nufft_deapod(void *state, const struct r5_nufft_geom *g, const float *corr, float complex *image,
			      float complex *grid, int to_grid)
{
	(void)state;
	long pix = g->N[0] * g->N[1] * g->N[2], C = g->C;
#pragma omp parallel for schedule(static)
	for (long q = 0; q < pix; q++) {
		long nn[3];
		long cell = r5_nufft_pixel_cell(g, q, nn);
		float f = r5_nufft_deapod_factor(g, corr, nn);
		for (long c = 0; c < C; c++) {
			if (to_grid)
				grid[cell * C + c] = f * image[q + c * pix];
			else
				image[q + c * pix] = f * grid[cell * C + c];
		}
	}
	return R5_OK;
}

r5_status r5_cpu_nufft_toep_place(void *state, const struct r5_nufft_geom *g, long coils, float complex *image,
				  float complex *grid, int place)
{
	(void)state;
	long pix = g->N[0] * g->N[1] * g->N[2], cells = 1;
	for (int d = 0; d < g->dims; d++)
		cells *= 2 * g->N[d];
#pragma omp parallel for collapse(2) schedule(static)
	for (long c = 0; c < coils; c++)
		for (long q = 0; q < pix; q++) {
			long cell = r5_nufft_toep_cell(g, q) + c * cells;
			if (place)
				grid[cell] = image[q + c * pix];
			else
				image[q + c * pix] = grid[cell];
		}
	return R5_OK;
}
