/* Non-uniform FFT (NUFFT) on a plan, and as a recon/linop operator, for 2D and 3D non-Cartesian
 * k-space, batched over coils.
 *
 * Lifecycle (as cuFINUFFT's makeplan -> setpts -> execute -> destroy): r5_nufft_plan_make for an
 * image size, coil count and oversampling; r5_nufft_set_points for the trajectory (sorted into
 * bins once); r5_nufft_forward (type 2, image -> samples) and r5_nufft_adjoint (type 1, samples
 * -> image) any number of times; r5_nufft_toeplitz for the normal operator; destroy. A plan
 * belongs to one thread at a time (like its context).
 *
 * Units and centring (BART and ISMRMRD): a point's coordinates k = (k0, k1, k2) are in cycles
 * per field of view, each in [-N_d/2, N_d/2) for an image of N_d along dimension d; the image's
 * pixel n_d sits at x_d = n_d - N_d/2 (its centre pixel N_d/2 is x = 0), so that DC is k = 0, as
 * the Cartesian centred FFT (recon/core/fft.h). In 2D (image dims[2] == 1) k2 must be in
 * [-1/2, 1/2) (BART writes 0) and is ignored.
 *
 * Scaling (unitary-like): forward y_j = N^-1/2 sum_n f[n] exp(-2 pi i sum_d k_jd x_d / N_d),
 * N = N0 N1 (N2) the image's pixels; adjoint its exact conjugate transpose. At the integer
 * points of the full Cartesian grid the forward is the centred unitary FFT r5_fft, so A^H A = I
 * there; for other trajectories |A^H A| is about (points / N) times a density-dependent factor.
 * BART's conventions exactly: y = (bart nufft -s, its DFT) / sqrt(N) (checked to 2e-6, 32^2, 300
 * random points), and bart nufft (normalised like this, at its own default accuracy) agrees with
 * scale 0.999 (bench_nufft).
 *
 * Method (Barnett et al., SIAM J Sci Comput 41:C479, 2019; recon/core/nufft_math.h): the image is
 * divided by the kernel's Fourier transform (de-apodisation), zero-padded to the oversampled grid
 * (M_d = the smallest 2,3,5-smooth even size >= sigma N_d and >= 2w), FFT'd through the context's
 * r5 FFT (r5_fft_raw: no FFTW here, so a CUDA back end can run the same plan) and interpolated
 * with the exponential-of-semicircle kernel of width w; the adjoint spreads, FFTs back and
 * de-apodises. The grid is [coil, M0, M1, M2], coil fastest: a point's weights are computed once
 * and each weight applies to all coils at once (the batch is inside the spreader, never one
 * spreading pass per coil); the weights come from per-tap polynomials fitted at plan time
 * (Horner, as FINUFFT), and the samples pass through a sorted coil-fastest copy (one permuting
 * pass each way, so a point reads or writes one contiguous run). Points are binned (16 x 16 cells in 2D, 16 x 4 x 4 in 3D) and sorted
 * by bin once per plan; the adjoint runs OpenMP threads over slabs of the slowest grid dimension,
 * each thread writing only its own slab's rows (a point near a slab's edge is visited by both
 * slabs, each adding its own rows): no atomics, no locks, and — bins visited in ascending order
 * in every slab — the same bits whatever the thread count. The frequency grid is kept centred (DC at M/2) so that dense trajectory centres do not
 * straddle a wrap; the half-grid shift becomes a (-1)^x factor folded into the de-apodisation.
 *
 * Toeplitz normal (r5_nufft_toeplitz): A^H W A f = sum_x' T[x - x'] f[x'] with the point-spread
 * function T[d] = N^-1 sum_j w_j exp(2 pi i k_j d / N), d in [-N_d, N_d): one convolution on the
 * 2N grid, i.e. one FFT pair per application with T's FFT kept (Wajer and Pruessmann; Fessler
 * et al., IEEE TSP 53, 2005). T is computed once by a type-1 NUFFT of the weights on the 2N image
 * at a near-double-accuracy width (the PSF plan), so the normal is exact up to single precision
 * (the pair adjoint(forward) carries the kernel's error twice). The 2D host path stores only the
 * half of the 2N grid that is not zero ([2N0, N1]: the image at cells [0, N), the readout FFT on
 * those rows) and runs the column FFT, the product with T's (real) FFT and the inverse column FFT
 * per block of columns in a cache-sized buffer: 3/4 of the FFT work (nufft.c, toep_normal_2d).
 *
 * Back ends (opts.method): on a CPU context the host spreader above (slabs, no atomics, bitwise
 * reproducible). On a device context the tile method: the back end's nufft_* slots
 * (recon/core/backend_slots.h; per-element math in recon/core/nufft_math.h) on tables uploaded at
 * set points (the sort runs on the host, once per plan), with the image, samples, grid and
 * Toeplitz arrays all on the device and the FFTs through the context (cuFFT): de-apodise into
 * the zeroed grid, FFT, interpolate one thread per sorted point (forward); spread one thread
 * block per subproblem of a bin into a shared-memory tile holding a group of coils, add the tile
 * to the grid with atomics only in its halo, FFT, de-apodise out (adjoint: cuFINUFFT's SM method,
 * Shih et al. 2021, with the coil batch inside the spreader); the Toeplitz kernel (its weights
 * uploaded) and normal likewise. R5_NUFFT_METHOD_TILES runs the same path on a CPU context
 * through the CPU back end's twin of those slots (recon/cpu/cpu_nufft.c): the host check of the
 * device path (tests/unit/test_nufft_tiles.c; gpu/NOTES.md says what has run on a GPU). */
#ifndef R5_LINOP_NUFFT_H
#define R5_LINOP_NUFFT_H

#include "../core/nufft_math.h"
#include "linop.h"

typedef enum r5_nufft_method {
	R5_NUFFT_METHOD_AUTO = 0,  /* host spreader on a CPU context, tiles on a device */
	R5_NUFFT_METHOD_HOST = 1,  /* the host spreader (refused on a device context) */
	R5_NUFFT_METHOD_TILES = 2, /* the back end's tile slots, on any context */
} r5_nufft_method;

typedef struct r5_nufft_opts {
	double oversampling; /* sigma, in [1.25, 2] (2 and 1.25 are the tuned ones) */
	int width;           /* kernel width in grid cells, 2..R5_NUFFT_MAX_WIDTH; 0: from tolerance */
	double tolerance;    /* target relative error when width is 0 (r5_nufft_width_for) */
	int method;          /* r5_nufft_method (0: auto) */
} r5_nufft_opts;

/* sigma 2, width from tolerance 1e-5 (w = 6 at sigma 2, 9 at 1.25), method auto */
extern const r5_nufft_opts r5_nufft_defaults;

typedef struct r5_nufft_plan r5_nufft_plan;

/* A plan for images of image_dims = [N0, N1, N2, coils] (N0, N1 >= 2; N2 = 1 for 2D; every other
 * dimension 1), opts NULL for the defaults. Allocates the grid ([C, M0, M1, M2]) and (host
 * spreader only) the sorted copy of the samples (n_points x C) only at the first execution. Accuracy (bench_nufft, fp32,
 * relative to a direct DFT): sigma 2: w 4 1e-3, 5 1e-4, 6 1e-5, 7 1.2e-6, >= 8 the fp32 floor
 * (1.5e-7); sigma 1.25: w 7 1.4e-4, 8 3.6e-5, 9 1.1e-5, and wider kernels get worse again (the
 * de-apodisation amplifies fp32 rounding by up to e^(beta (1 - sqrt(1 - (pi w / (2 sigma beta))^2))),
 * ~400x at w 12), so 1.25 is for tolerances >= 1e-5. */
r5_status r5_nufft_plan_make(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_nufft_opts *opts,
			     r5_nufft_plan **out);
void r5_nufft_plan_destroy(r5_nufft_plan *plan); /* NULL is harmless */

/* The trajectory: n_points points, coords[3 j + d] = k_d of point j (cycles per FOV: BART's
 * [3, readout, lines] layout). Every coordinate is checked (finite, in range: the message names
 * the point and the dimension); a new call replaces the points and drops a Toeplitz kernel. */
r5_status r5_nufft_set_points(r5_ctx *ctx, r5_nufft_plan *plan, long n_points, const float *coords);

/* samples dims: [1, n_read, n_lines, coils] with n_read * n_lines = the plan's points (sample j
 * is element j of the first three dims), every other dimension 1; image: the plan's image_dims.
 * Both contiguous, where the context computes; out never overlaps in. */
r5_status r5_nufft_forward(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *samples, const r5_array *image);
r5_status r5_nufft_adjoint(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *image, const r5_array *samples);

/* Grid-domain spreading and interpolation alone (no FFT, no de-apodisation; density
 * compensation, recon/linop/density.h): grid [C, M0, M1, M2] (r5_nufft_info's grid, coil
 * fastest, frequency k_d at oversampled cell sigma_d k_d + M_d/2 with sigma_d = M_d / N_d), samples as
 * r5_nufft_forward. spread_grid overwrites the grid with sum_j s_j phi(cell - t_j); interp_grid
 * writes s_j = sum_cells phi(cell - t_j) grid[cell] (phi the plan's kernel, a product over the
 * dimensions, peak 1 at distance 0): each the other's adjoint. */
r5_status r5_nufft_spread_grid(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *grid, const r5_array *samples);
r5_status r5_nufft_interp_grid(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *samples, const r5_array *grid);

/* Makes the Toeplitz kernel of A^H W A for the points set now, W = diag(weights) (n_points real
 * weights, NULL: all 1). Holds T's FFT ([2 N0, 2 N1, 2 N2]), the PSF's own NUFFT plan (the 2N
 * image at sigma 2; its (4 N)^D grid and a 2N image only while the kernel is made) and, at the
 * first application, a 2N grid for a group of coils (2D host path: [2 N0, N1] per coil and a
 * [32 x threads, 2 N1] column block). New points drop the kernel but keep T's buffer, the 2N
 * grid and the PSF plan, so that a loop of set points + toeplitz (a frame per window of spokes)
 * fits the PSF kernel once; the kernel is the same bits as a fresh plan's. */
r5_status r5_nufft_toeplitz(r5_ctx *ctx, r5_nufft_plan *plan, const float *weights);
/* out = A^H W A in through the Toeplitz kernel (image dims; out may be in). */
r5_status r5_nufft_normal(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *out, const r5_array *in);

/* What the plan chose and holds. */
typedef struct r5_nufft_info {
	int dims;               /* 2 or 3 */
	int width;              /* kernel width, cells */
	double beta, oversampling;
	long grid[3];           /* oversampled grid M_d (1 past dims) */
	long n_points, n_coils;
	long bytes;             /* arrays and tables held now */
} r5_nufft_info;
void r5_nufft_get_info(const r5_nufft_plan *plan, r5_nufft_info *info);

/* The NUFFT as an operator: domain image_dims [N0, N1, N2, coils], range [1, n_read, n_lines,
 * coils]; traj a host array [3, n_read, n_lines] (BART's trajectory: real parts are the
 * coordinates in cycles per FOV, imaginary parts ignored). Normal: the Toeplitz A^H A (made at
 * the first normal application). The operator copies what it needs of traj. */
r5_status r5_linop_nufft(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_array *traj,
			 const r5_nufft_opts *opts, r5_linop **out);

#endif
