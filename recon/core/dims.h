/* Dimension helpers. recon5t arrays always carry R5_DIMS (16) dimensions in BART's order,
 * x (readout) fastest; unused dimensions have size 1. Names below are BART's indices. */
#ifndef R5_CORE_DIMS_H
#define R5_CORE_DIMS_H

#include "backend.h"

enum r5_dim {
	R5_DIM_X = 0,      /* readout */
	R5_DIM_Y = 1,      /* phase encode 1 */
	R5_DIM_Z = 2,      /* phase encode 2 / partition */
	R5_DIM_COIL = 3,
	R5_DIM_MAP = 4,    /* ESPIRiT map set */
	R5_DIM_TE = 5,     /* contrast / echo */
	R5_DIM_COEFF = 6,
	R5_DIM_COEFF2 = 7,
	R5_DIM_ITER = 8,
	R5_DIM_CSHIFT = 9,
	R5_DIM_TIME = 10,  /* repetition */
	R5_DIM_TIME2 = 11, /* cardiac phase */
	R5_DIM_LEVEL = 12,
	R5_DIM_SLICE = 13,
	R5_DIM_AVG = 14,
	R5_DIM_BATCH = 15,
};

#define R5_FLAG(d) (1UL << (d))

void r5_dims_ones(long dims[R5_DIMS]);
void r5_dims_copy(long dst[R5_DIMS], const long src[R5_DIMS]);
int r5_dims_equal(const long a[R5_DIMS], const long b[R5_DIMS]);
/* Product of all dims; returns -1 on overflow or a non-positive dim. */
long r5_dims_size(const long dims[R5_DIMS]);
/* Contiguous strides (elements), x fastest. */
void r5_dims_strides(long strides[R5_DIMS], const long dims[R5_DIMS]);
/* Strides of `dims` with 0 wherever dims[d] == 1 (for broadcasting into a larger shape). */
void r5_dims_strides_bcast(long strides[R5_DIMS], const long dims[R5_DIMS]);
/* Writes "[256 256 1 8 ...]" (trailing ones dropped) into text. */
const char *r5_dims_format(char *text, size_t size, const long dims[R5_DIMS]);

#endif
