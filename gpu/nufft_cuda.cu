/* CUDA back end: the NUFFT tile method's slots (recon/core/backend_slots.h: nufft_spread,
 * nufft_interp, nufft_deapod, nufft_toep_place) for recon/linop/nufft.c's device path. The
 * per-element math (Horner kernel weights, tile geometry and core test, de-apodisation factors,
 * pixel-to-cell maps) is recon/core/nufft_math.h's, the same functions the CPU back end's twin
 * (recon/cpu/cpu_nufft.c) runs, so both compute the same function.
 *
 * Spreading (type 1), cuFINUFFT's SM method (Shih et al. 2021, arXiv:2102.08463) with the coil
 * batch inside: one thread block per subproblem (a run of <= R5_NUFFT_SUB_POINTS sorted points
 * of one bin); the tile (bin + kernel reach) of a group of G coils lives in shared memory as
 * [cells][G] float2; each thread takes a point, computes its D x w weights once, reads its G
 * coil values into registers and adds weight x value into the tile for every coil (shared-memory
 * atomics); then the block adds the tile into the grid: plain read-add-write in the tile's core
 * (cells no other tile covers, in a bin that is one subproblem), global atomics in the halo.
 * G = the coils that fit the shared-memory budget (up to NUFFT_COIL_GROUP, 96 KiB per block,
 * the device's opt-in limit when one coil needs more); more coils run as groups, one launch each
 * (a point's weights are recomputed per group, never per coil). Exact zeros of the tile are not
 * written (a tile's far halo past the grid's last partial bin holds only zeros).
 *
 * Interpolation (type 2): one thread per sorted point (neighbours in a warp are neighbours on the
 * grid: reads hit the same cache lines), weights once, the coils in register groups of
 * NUFFT_COIL_GROUP read as contiguous runs of the coil-fastest grid; the result goes to the
 * sample's place in the [n, C] samples (no separate permutation pass).
 *
 * De-apodisation and the Toeplitz pad/crop: one thread per (coil, pixel), coil fastest in the
 * thread index so that the coil-fastest grid is written in runs. Written without a device: see
 * gpu/NOTES.md (unverified until tests/gpu/run.sh has run). */
#include "cuda_common.h"
#include "../recon/core/nufft_math.h"

#define NUFFT_THREADS 256
#define NUFFT_COIL_GROUP 8                  /* coils per register batch (spread and interp) */
#define NUFFT_SMEM_BUDGET ((size_t)96 << 10) /* per block: two blocks fit an H100/H200 SM */

#define W R5_NUFFT_MAX_WIDTH

static __device__ __forceinline__ long grid_cell(const struct r5_nufft_geom &g, long x0, long x1, long x2)
{
	return r5_nufft_mod(x0, g.M[0]) + g.M[0] * (r5_nufft_mod(x1, g.M[1]) + g.M[1] * r5_nufft_mod(x2, g.M[2]));
}

/* The weights of sorted point i: wt0 (x, registers when the caller unrolls over W) and the
 * slower dims' wt1, wt2. */
static __device__ __forceinline__ void point_weights(const struct r5_nufft_geom &g, const float *offset, float *wt0,
						     float *wt1, float *wt2)
{
	r5_nufft_weights_poly(offset[0], g.width, g.n_coef, g.coef, wt0);
	r5_nufft_weights_poly(offset[1], g.width, g.n_coef, g.coef, wt1);
	if (g.dims == 3)
		r5_nufft_weights_poly(offset[2], g.width, g.n_coef, g.coef, wt2);
	else
		wt2[0] = 1.0f;
}

/* GMAX: the most coils of one launch (1, 2, 4 or 8: registers for the coil values and the
 * unrolled tap x coil body scale with it; the 1-coil kernel has no spills). */
template <int GMAX>
static __global__ void __launch_bounds__(NUFFT_THREADS)
	nufft_k_spread(const __grid_constant__ struct r5_nufft_geom g, const __grid_constant__ struct r5_nufft_points pts,
		       const float2 *__restrict__ samples, float2 *__restrict__ grid, int c0, int G)
{
	extern __shared__ float2 tile[];
	long s = blockIdx.x, bin = pts.sub_bin[s], b[3], origin[3], len[3];
	r5_nufft_tile(&g, bin, b, origin, len);
	int exclusive = g.core_ok && (s == 0 || pts.sub_bin[s - 1] != bin) && (s == pts.n_sub - 1 || pts.sub_bin[s + 1] != bin);
	long cells = len[0] * len[1] * len[2], n = g.n_points, C = g.C;
	for (long q = threadIdx.x; q < cells * G; q += blockDim.x)
		tile[q] = make_float2(0.0f, 0.0f);
	__syncthreads();
	const int w = g.width, D = g.dims, nz = D == 3 ? w : 1;
	for (long i = pts.sub_first[s] + threadIdx.x; i < pts.sub_first[s + 1]; i += blockDim.x) {
		float wt0[W], wt1[W], wt2[W];
		point_weights(g, pts.offset + i * D, wt0, wt1, wt2);
		long st[3], l[3];
		int inside = 1;
		for (int d = 0; d < 3; d++) {
			st[d] = d < D ? pts.start[i * D + d] : 0;
			l[d] = st[d] - origin[d];
			inside = inside && l[d] >= 0 && l[d] + (d < D ? w : 1) <= len[d];
		}
		float2 v[GMAX];
		long j = pts.order[i];
#pragma unroll
		for (int c = 0; c < GMAX; c++)
			v[c] = c < G ? samples[j + (c0 + c) * n] : make_float2(0.0f, 0.0f);
		for (int a = 0; a < nz; a++)
			for (int bb = 0; bb < w; bb++) {
				float w21 = wt2[a] * wt1[bb];
				long row = ((l[2] + a) * len[1] + l[1] + bb) * len[0] + l[0];
#pragma unroll
				for (int t = 0; t < W; t++) {
					if (t >= w)
						break;
					float wgt = w21 * wt0[t];
					if (inside) {
						float2 *cell = tile + (row + t) * G;
#pragma unroll
						for (int c = 0; c < GMAX; c++)
							if (c < G) {
								atomicAdd(&cell[c].x, wgt * v[c].x);
								atomicAdd(&cell[c].y, wgt * v[c].y);
							}
					} else {
						float2 *cell = grid + grid_cell(g, st[0] + t, st[1] + bb, st[2] + a) * C + c0;
#pragma unroll
						for (int c = 0; c < GMAX; c++)
							if (c < G) {
								atomicAdd(&cell[c].x, wgt * v[c].x);
								atomicAdd(&cell[c].y, wgt * v[c].y);
							}
					}
				}
			}
	}
	__syncthreads();
	for (long q = threadIdx.x; q < cells; q += blockDim.x) {
		long l[3] = {q % len[0], (q / len[0]) % len[1], q / (len[0] * len[1])};
		int core = exclusive && r5_nufft_tile_core(&g, b, l);
		float2 *dst = grid + grid_cell(g, origin[0] + l[0], origin[1] + l[1], origin[2] + l[2]) * C + c0;
		const float2 *src = tile + q * G;
		for (int c = 0; c < G; c++) {
			float2 val = src[c];
			if (core) {
				float2 old = dst[c];
				dst[c] = make_float2(old.x + val.x, old.y + val.y);
			} else {
				if (val.x != 0.0f)
					atomicAdd(&dst[c].x, val.x);
				if (val.y != 0.0f)
					atomicAdd(&dst[c].y, val.y);
			}
		}
	}
}

static __global__ void __launch_bounds__(NUFFT_THREADS)
	nufft_k_interp(const __grid_constant__ struct r5_nufft_geom g, const __grid_constant__ struct r5_nufft_points pts,
		       const float2 *__restrict__ grid, float2 *__restrict__ samples)
{
	const long n = g.n_points, C = g.C;
	const int w = g.width, D = g.dims, nz = D == 3 ? w : 1;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)blockDim.x * gridDim.x) {
		float wt0[W], wt1[W], wt2[W];
		point_weights(g, pts.offset + i * D, wt0, wt1, wt2);
		long st[3] = {0, 0, 0}, x0[W];
		for (int d = 0; d < D; d++)
			st[d] = pts.start[i * D + d];
#pragma unroll
		for (int t = 0; t < W; t++)
			x0[t] = r5_nufft_mod(st[0] + t, g.M[0]);
		long j = pts.order[i];
		for (long c0 = 0; c0 < C; c0 += NUFFT_COIL_GROUP) {
			int G = C - c0 < NUFFT_COIL_GROUP ? (int)(C - c0) : NUFFT_COIL_GROUP;
			float2 acc[NUFFT_COIL_GROUP];
#pragma unroll
			for (int c = 0; c < NUFFT_COIL_GROUP; c++)
				acc[c] = make_float2(0.0f, 0.0f);
			for (int a = 0; a < nz; a++)
				for (int bb = 0; bb < w; bb++) {
					float w21 = wt2[a] * wt1[bb];
					long row = g.M[0] * (r5_nufft_mod(st[1] + bb, g.M[1]) + g.M[1] * r5_nufft_mod(st[2] + a, g.M[2]));
#pragma unroll
					for (int t = 0; t < W; t++) {
						if (t >= w)
							break;
						float wgt = w21 * wt0[t];
						const float2 *cell = grid + (row + x0[t]) * C + c0;
#pragma unroll
						for (int c = 0; c < NUFFT_COIL_GROUP; c++)
							if (c < G) {
								float2 gv = cell[c];
								acc[c].x += wgt * gv.x;
								acc[c].y += wgt * gv.y;
							}
					}
				}
#pragma unroll
			for (int c = 0; c < NUFFT_COIL_GROUP; c++)
				if (c < G)
					samples[j + (c0 + c) * n] = acc[c];
		}
	}
}

static __global__ void nufft_k_deapod(const __grid_constant__ struct r5_nufft_geom g, const float *__restrict__ corr,
				      float2 *image, float2 *grid, int to_grid)
{
	const long C = g.C, pix = g.N[0] * g.N[1] * g.N[2], total = pix * C;
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)blockDim.x * gridDim.x) {
		long c = i % C, q = i / C, nn[3];
		long cell = r5_nufft_pixel_cell(&g, q, nn);
		float f = r5_nufft_deapod_factor(&g, corr, nn);
		if (to_grid) {
			float2 v = image[q + c * pix];
			grid[cell * C + c] = make_float2(f * v.x, f * v.y);
		} else {
			float2 v = grid[cell * C + c];
			image[q + c * pix] = make_float2(f * v.x, f * v.y);
		}
	}
}

static __global__ void nufft_k_toep_place(const __grid_constant__ struct r5_nufft_geom g, long coils, float2 *image,
					  float2 *grid, int place)
{
	long pix = g.N[0] * g.N[1] * g.N[2], cells = 1, total = pix * coils;
	for (int d = 0; d < g.dims; d++)
		cells *= 2 * g.N[d];
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)blockDim.x * gridDim.x) {
		long q = i % pix, c = i / pix, cell = r5_nufft_toep_cell(&g, q) + c * cells;
		if (place)
			grid[cell] = image[q + c * pix];
		else
			image[q + c * pix] = grid[cell];
	}
}

/* Coils per spreading launch: as many as fit the budget (or the device's opt-in limit for one),
 * the groups made even. */
static r5_status coil_group(struct r5_cuda_state *s, const struct r5_nufft_geom *g, int *group, size_t *smem)
{
	long cells = 1;
	for (int d = 0; d < g->dims; d++)
		cells *= g->bin[d] + g->width;
	size_t per_coil = (size_t)cells * sizeof(float2), budget = NUFFT_SMEM_BUDGET;
	int optin = 0;
	R5_CU("cudaDeviceGetAttribute (shared memory opt-in)",
	      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, s->device));
	if ((size_t)optin < budget)
		budget = (size_t)optin;
	if (per_coil > budget)
		budget = (size_t)optin;
	long fit = (long)(budget / per_coil);
	if (fit < 1)
		return r5_set_error(R5_ENOTSUP, "cuda nufft_spread: a tile of %ld cells (bins %ld x %ld x %ld, width %d) "
				    "needs %zu bytes of shared memory, the device allows %d", cells, g->bin[0], g->bin[1],
				    g->bin[2], g->width, per_coil, optin);
	if (fit > NUFFT_COIL_GROUP)
		fit = NUFFT_COIL_GROUP;
	long groups = (g->C + fit - 1) / fit;
	*group = (int)((g->C + groups - 1) / groups);
	*smem = per_coil * (size_t)*group;
	return R5_OK;
}

r5_status r5_cuda_nufft_spread(void *state, const struct r5_nufft_geom *g, const struct r5_nufft_points *pts,
			       const r5_cf *samples, r5_cf *grid)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (pts->n_sub < 1)
		return R5_OK;
	if (pts->n_sub > 2147483647L)
		return r5_set_error(R5_EINVAL, "cuda nufft_spread: %ld subproblems (grid limit 2^31 - 1)", pts->n_sub);
	R5_TRY(r5_cuda_activate(s));
	int group = 1;
	size_t smem = 0;
	R5_TRY(coil_group(s, g, &group, &smem));
	void (*kernel)(const struct r5_nufft_geom, const struct r5_nufft_points, const float2 *, float2 *, int, int) =
		group <= 1 ? nufft_k_spread<1> : group <= 2 ? nufft_k_spread<2> : group <= 4 ? nufft_k_spread<4>
									    : nufft_k_spread<NUFFT_COIL_GROUP>;
	if (smem > ((size_t)48 << 10))
		R5_CU("cudaFuncSetAttribute (nufft_spread shared memory)",
		      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
	for (long c0 = 0; c0 < g->C; c0 += group) {
		int G = g->C - c0 < group ? (int)(g->C - c0) : group;
		kernel<<<(unsigned)pts->n_sub, NUFFT_THREADS, smem, s->stream>>>(*g, *pts, samples, grid, (int)c0, G);
		R5_TRY(r5_cuda_launched("nufft_spread"));
	}
	return R5_OK;
}

r5_status r5_cuda_nufft_interp(void *state, const struct r5_nufft_geom *g, const struct r5_nufft_points *pts,
			       const r5_cf *grid, r5_cf *samples)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (g->n_points < 1)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	nufft_k_interp<<<r5_cuda_grid(g->n_points, NUFFT_THREADS), NUFFT_THREADS, 0, s->stream>>>(*g, *pts, grid, samples);
	return r5_cuda_launched("nufft_interp");
}

r5_status r5_cuda_nufft_deapod(void *state, const struct r5_nufft_geom *g, const float *corr, r5_cf *image, r5_cf *grid,
			       int to_grid)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	long total = g->N[0] * g->N[1] * g->N[2] * g->C;
	R5_TRY(r5_cuda_activate(s));
	nufft_k_deapod<<<r5_cuda_grid(total, NUFFT_THREADS), NUFFT_THREADS, 0, s->stream>>>(*g, corr, image, grid, to_grid);
	return r5_cuda_launched("nufft_deapod");
}

r5_status r5_cuda_nufft_toep_place(void *state, const struct r5_nufft_geom *g, long coils, r5_cf *image, r5_cf *grid,
				   int place)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	long total = g->N[0] * g->N[1] * g->N[2] * coils;
	if (total < 1)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	nufft_k_toep_place<<<r5_cuda_grid(total, NUFFT_THREADS), NUFFT_THREADS, 0, s->stream>>>(*g, coils, image, grid,
												   place);
	return r5_cuda_launched("nufft_toep_place");
}
