/* Linear operators: forward A, adjoint A^H and normal A^H A, each a callback over arrays where
 * the context computes, with the operator's own data and destructor (after BART's
 * src/linops/linop.h and Gadgetron's mult_M / mult_MH / mult_MH_M).
 *
 * r5_linop_forward / _adjoint / _normal check the shapes against the operator's input and
 * output dims and name the operator in any error (SigPy's apply). An operator without its own
 * normal gets A^H(A x) through a scratch array made once, at creation — never per call.
 *
 * Operators here: centred unitary FFT over flagged dims (fft), multiplication by a fixed
 * sampling mask (sample), and ESPIRiT/SENSE coil maps with one or more map sets (maps).
 * r5_linop_chain composes them; r5_linop_adjoint_test checks <A x, y> = <x, A^H y> for any
 * operator on random inputs (BART's src/linops/lintest.c). */
#ifndef R5_LINOP_LINOP_H
#define R5_LINOP_LINOP_H

#include "../core/array.h"
#include "../core/progress.h"

typedef r5_status (*r5_linop_fn)(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in);

typedef struct r5_linop {
	char name[48];
	long idims[R5_DIMS]; /* domain (x) */
	long odims[R5_DIMS]; /* range (A x) */
	r5_linop_fn forward, adjoint, normal; /* normal may be NULL: A^H A through `scratch` */
	void *data;
	void (*destroy)(void *data);
	r5_array *scratch; /* odims, made by r5_linop_create when normal is NULL */
} r5_linop;

/* Makes an operator; takes ownership of data (destroy(data) runs on failure too). */
r5_status r5_linop_create(r5_ctx *ctx, const char *name, const long idims[R5_DIMS], const long odims[R5_DIMS],
			  r5_linop_fn forward, r5_linop_fn adjoint, r5_linop_fn normal, void *data,
			  void (*destroy)(void *data), r5_linop **out);
void r5_linop_free(r5_linop *op); /* NULL is harmless */

r5_status r5_linop_forward(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);
r5_status r5_linop_adjoint(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);
r5_status r5_linop_normal(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);

/* C = B A (A applied first): C^H = A^H B^H, C^H C = A^H (B^H B) A, reusing B's normal (for FFT
 * then sampling, B^H B is the mask alone). Takes ownership of a and b (freed on failure too). */
r5_status r5_linop_chain(r5_ctx *ctx, r5_linop *a, r5_linop *b, r5_linop **out);

/* Centred unitary FFT over `flags` on arrays of dims (normal = identity). */
r5_status r5_linop_fft(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_linop **out);
/* out = mask * in; mask (work residency, real 0/1 values) broadcasts into dims. The operator
 * keeps a reference to mask: the caller keeps it alive. */
r5_status r5_linop_sample(r5_ctx *ctx, const long dims[R5_DIMS], const r5_array *mask, r5_linop **out);
/* SENSE coil maps: maps [x, y, z, coil, n_maps] (work residency, kept by reference);
 * forward: image [x, y, z, 1, n_maps] -> coil images [x, y, z, coil, 1] = sum_m map_m image_m;
 * adjoint: coil images -> sum_c conj(map_cm) coil_c. */
r5_status r5_linop_maps(r5_ctx *ctx, const r5_array *maps, r5_linop **out);
/* M F over the flagged dimensions (forward: mask after the centred FFT), with the normal
 * F^H M' F / N on raw FFTs (see ops.c). r5_linop_sense is maps chained with this. */
r5_status r5_linop_fft_sample(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, const r5_array *mask,
			      r5_linop **out);
/* The SENSE encoding E = M F S for Cartesian sampling: maps, FFT over fft_flags, mask. */
r5_status r5_linop_sense(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
			 r5_linop **out);

/* The same encoding applied by groups of coils_per_group coils (forward fills each group's coil
 * range; adjoint and normal sum the groups' contributions), with a check of progress (NULL:
 * never stop; stage `stage`, fractions 0..1 per application) after each group, so that one
 * application of a 3D 32-coil operator (~1.5 s on 2 cores at 128^3) is not one block the stop
 * hook cannot interrupt. One map set is used in place (group views); more are copied per group
 * (contiguous). coils_per_group <= 0 or >= the coils: plain r5_linop_sense. */
r5_status r5_linop_sense_grouped(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
				 long coils_per_group, const r5_progress *progress, const char *stage,
				 r5_linop **out);

/* Adjoint test: relative error |<A x, y> - <x, A^H y>| / (|A x| |y|) on random x, y (seeded);
 * also checks normal(x) against adjoint(forward(x)) (relative error in *normal_err, may be NULL). */
r5_status r5_linop_adjoint_test(r5_ctx *ctx, r5_linop *op, unsigned seed, double *adjoint_err, double *normal_err);

/* A descriptor for the contiguous block of `a` at index `index` of dimension `dim` when every
 * dimension above dim is 1 (or for dim's slab in general: caller checks contiguity). */
r5_array r5_linop_slice(const r5_array *a, int dim, long index);

#endif
