/* Linear operators: forward A, adjoint A^H and normal A^H A, each a callback over arrays where
 * the context computes, with the operator's own data and destructor (after BART's
 * src/linops/linop.h and Gadgetron's mult_M / mult_MH / mult_MH_M).
 *
 * Applying. r5_linop_forward / _adjoint / _normal check the shapes against the operator's input
 * and output dims, that both arrays are contiguous and live where the context computes, and the
 * aliasing rule below, and name the operator in any error (SigPy's apply).
 *
 * Aliasing rule. `out` never overlaps `in` (the wrappers compare the memory ranges the two
 * arrays span), except that an operator may declare, per application, that out may be exactly
 * in (same data, same strides: in place) with the R5_LINOP_INPLACE_* bits of `in_place`. A
 * partial overlap is always refused. Operators that declare in-place: identity (all), fft,
 * sample and fft-sample (all), scale (as its operand), adjoint-of (its operand's forward and
 * adjoint bits swapped), circshift and pad-only resize (normal).
 *
 * Ownership. Operators are reference counted: r5_linop_create returns one reference,
 * r5_linop_ref adds one, r5_linop_free drops one and destroys the operator at zero. Every
 * composite (chain, sum, scale, stacks, adjoint-of) TAKES the caller's reference to each
 * operand, on failure too (the operand is then released): to keep using an operand, or to put
 * it in two composites, call r5_linop_ref first. Arrays given to operators (maps, masks) are
 * borrowed: the caller keeps them alive while the operator lives. Counts are not atomic: an
 * operator (and its scratch) belongs to one thread at a time, like its context.
 *
 * Scratch. Operators allocate their scratch arrays at the first application that needs them,
 * sized to what that application uses, and keep them for later applications (never per call);
 * r5_linop_bytes_held says what an operator holds now, recursing into its operands. An operator
 * without its own normal gets A^H(A x) through one array of its output dims made at the first
 * normal application.
 *
 * Operators here: centred unitary FFT over flagged dims (fft), multiplication by a fixed
 * sampling mask (sample), ESPIRiT/SENSE coil maps with one or more map sets (maps) and the
 * SENSE encoding (ops.c); chain, sum, scale, vertical and horizontal stacks, identity,
 * adjoint-of, centred zero-pad/crop (resize) and circular shift (algebra.c). Property tests for
 * any operator and the shared table of test cases: lintest.h. */
#ifndef R5_LINOP_LINOP_H
#define R5_LINOP_LINOP_H

#include "../core/array.h"
#include "../core/progress.h"

typedef r5_status (*r5_linop_fn)(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in);

/* in_place bits: out may be exactly in for this application */
#define R5_LINOP_INPLACE_FORWARD 1u
#define R5_LINOP_INPLACE_ADJOINT 2u
#define R5_LINOP_INPLACE_NORMAL 4u
#define R5_LINOP_INPLACE_ALL 7u

typedef struct r5_linop {
	char name[48];
	long idims[R5_DIMS]; /* domain (x) */
	long odims[R5_DIMS]; /* range (A x) */
	r5_linop_fn forward, adjoint, normal; /* normal may be NULL: A^H A through `scratch` */
	void *data;
	void (*destroy)(void *data);
	long (*held)(const void *data); /* bytes data holds now, operands included; NULL: none */
	unsigned in_place;              /* R5_LINOP_INPLACE_* (0 from r5_linop_create) */
	int refs;                       /* references (r5_linop_ref / r5_linop_free) */
	r5_array *scratch;              /* odims, made at the first normal when normal is NULL */
} r5_linop;

/* Makes an operator with one reference; takes ownership of data (destroy(data) runs on failure
 * too). Allocates nothing else. Set in_place and held on the result if they apply. */
r5_status r5_linop_create(r5_ctx *ctx, const char *name, const long idims[R5_DIMS], const long odims[R5_DIMS],
			  r5_linop_fn forward, r5_linop_fn adjoint, r5_linop_fn normal, void *data,
			  void (*destroy)(void *data), r5_linop **out);
r5_linop *r5_linop_ref(r5_linop *op); /* one more reference; returns op (NULL is harmless) */
void r5_linop_free(r5_linop *op);     /* drops one reference, destroys at zero; NULL is harmless */

r5_status r5_linop_forward(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);
r5_status r5_linop_adjoint(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);
r5_status r5_linop_normal(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);
/* r5_linop_normal with the operator as a void pointer: the shape of solve/iter.h's r5_iter_op, for
 * CG and the power iteration on an operator's normal (user: the r5_linop). */
r5_status r5_linop_normal_op(r5_ctx *ctx, void *op, r5_array *out, const r5_array *in);

/* Bytes of the arrays the operator holds now (its scratch, arrays its data made, its operands'
 * holdings); borrowed arrays (maps, masks) do not count. An operand shared by two composites
 * counts in each. NULL: 0. */
long r5_linop_bytes_held(const r5_linop *op);

/* For operator implementations: *slot, made with dims where the context computes at the first
 * call (a scratch array kept in the operator's data); `what` names it in an error. */
r5_status r5_linop_scratch(r5_ctx *ctx, const char *what, r5_array **slot, const long dims[R5_DIMS]);
/* Bytes an owned array holds (0 for NULL and for views). */
long r5_linop_array_bytes(const r5_array *a);

/* --- composites (algebra.c; chain in linop.c). Each takes the caller's references. --- */

/* C = B A (A applied first): C^H = A^H B^H, C^H C = A^H (B^H B) A, reusing B's normal (for FFT
 * then sampling, B^H B is the mask alone). Holds A's output (one array, at the first use) and,
 * when B's normal cannot run in place, a second one for B's normal. */
r5_status r5_linop_chain(r5_ctx *ctx, r5_linop *a, r5_linop *b, r5_linop **out);
/* C = A + B (same domain, same range): C^H = A^H + B^H, C^H C = (A + B)^H (A + B) through
 * forward then adjoint (one range array; B's output and B^H's output held at first use). */
r5_status r5_linop_sum(r5_ctx *ctx, r5_linop *a, r5_linop *b, r5_linop **out);
/* C = alpha A (complex alpha): C^H = conj(alpha) A^H, C^H C = |alpha|^2 A^H A (A's normal).
 * In place wherever A is. */
r5_status r5_linop_scale(r5_ctx *ctx, float complex alpha, r5_linop *a, r5_linop **out);
/* C = [A; B]: same domain, ranges concatenated along dim (A's part first; the other dims
 * equal): C x = [A x; B x], C^H [y_a; y_b] = A^H y_a + B^H y_b, C^H C = A^H A + B^H B
 * (each operand's own normal). Parts that are strided views go through contiguous copies. */
r5_status r5_linop_vstack(r5_ctx *ctx, int dim, r5_linop *a, r5_linop *b, r5_linop **out);
/* C = [A B]: domains concatenated along dim, same range: C [x_a; x_b] = A x_a + B x_b,
 * C^H y = [A^H y; B^H y], C^H C = [A^H A, A^H B; B^H A, B^H B] through forward then adjoint. */
r5_status r5_linop_hstack(r5_ctx *ctx, int dim, r5_linop *a, r5_linop *b, r5_linop **out);
/* C = A^H as an operator: C^H = A, C^H C = A A^H (adjoint then forward, one array of A's
 * domain held at the first normal). */
r5_status r5_linop_adjoint_of(r5_ctx *ctx, r5_linop *a, r5_linop **out);

/* --- elementary operators (algebra.c) --- */

/* I on dims: I^H = I, I^H I = I; in place allowed (a copy otherwise). */
r5_status r5_linop_identity(r5_ctx *ctx, const long dims[R5_DIMS], r5_linop **out);
/* Zero-pad / crop about the centre (r5_zresize_centered's convention, per dimension: larger
 * pads, smaller crops): R^H is the resize back, R^H R = I when it only pads, else the mask of
 * the kept centre (through one odims array). */
r5_status r5_linop_resize(r5_ctx *ctx, const long idims[R5_DIMS], const long odims[R5_DIMS], r5_linop **out);
/* Circular shift: out[(i + shifts) mod dims] = in[i] (any integer shifts): S^H shifts by
 * -shifts, S^H S = I. */
r5_status r5_linop_circshift(r5_ctx *ctx, const long dims[R5_DIMS], const long shifts[R5_DIMS], r5_linop **out);

/* --- MRI operators (ops.c) --- */

/* Centred unitary FFT over `flags` on arrays of dims (normal = identity). */
r5_status r5_linop_fft(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_linop **out);
/* out = mask * in; mask (work residency, real 0/1 values) broadcasts into dims. The operator
 * keeps a reference to mask: the caller keeps it alive. */
r5_status r5_linop_sample(r5_ctx *ctx, const long dims[R5_DIMS], const r5_array *mask, r5_linop **out);
/* SENSE coil maps: maps [x, y, z, coil, n_maps] (work residency, kept by reference);
 * forward: image [x, y, z, 1, n_maps] -> coil images [x, y, z, coil, 1] = sum_m map_m image_m;
 * adjoint: coil images -> sum_c conj(map_cm) coil_c; normal coil by coil through one volume
 * [x, y, z] (never a coil-sized array). */
r5_status r5_linop_maps(r5_ctx *ctx, const r5_array *maps, r5_linop **out);
/* M F over the flagged dimensions (forward: mask after the centred FFT), with the normal
 * F^H M' F / N on raw FFTs (see ops.c). r5_linop_sense is maps chained with this. Holds the
 * shifted mask (mask dims). */
r5_status r5_linop_fft_sample(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, const r5_array *mask,
			      r5_linop **out);
/* The SENSE encoding E = M F S for Cartesian sampling: maps, FFT over fft_flags, mask. Holds
 * the shifted mask from creation and one array of coil images from its first application. */
r5_status r5_linop_sense(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
			 r5_linop **out);

/* The same encoding applied by groups of coils_per_group coils (forward fills each group's coil
 * range; adjoint and normal sum the groups' contributions), with a check of progress (NULL:
 * never stop; stage `stage`, fractions 0..1 per application) after each group, so that one
 * application of a 3D 32-coil operator (~1.5 s on 2 cores at 128^3) is not one block the stop
 * hook cannot interrupt. One map set is used in place (group views); more are copied per group
 * (contiguous). The groups share one coil-image array of a group's size (made at the first
 * adjoint or normal); the first group's adjoint writes the output and the others' add into it.
 * Groups of equal size share one fft-sample operator. coils_per_group <= 0 or >= the coils:
 * plain r5_linop_sense. */
r5_status r5_linop_sense_grouped(r5_ctx *ctx, const r5_array *maps, const r5_array *mask, unsigned long fft_flags,
				 long coils_per_group, const r5_progress *progress, const char *stage,
				 r5_linop **out);

/* Adjoint test (lintest.c): relative error |<A x, y> - <x, A^H y>| / (|A x| |y|) on random x, y
 * (seeded); also checks normal(x) against adjoint(forward(x)) (relative error in *normal_err,
 * may be NULL). */
r5_status r5_linop_adjoint_test(r5_ctx *ctx, r5_linop *op, unsigned seed, double *adjoint_err, double *normal_err);

/* A descriptor for the contiguous block of `a` at index `index` of dimension `dim` when every
 * dimension above dim is 1 (or for dim's slab in general: caller checks contiguity). */
r5_array r5_linop_slice(const r5_array *a, int dim, long index);

#endif
