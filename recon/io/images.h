/* r5_image_set: what a reconstruction returns — coil-combined complex images on the recon
 * matrix, their geometry and the header they came from, plus how they were made (pipeline,
 * parameters, per-stage timings) so that DICOM and the service can say so. */
#ifndef R5_IO_IMAGES_H
#define R5_IO_IMAGES_H

#include "../core/array.h"
#include "header.h"
#include "scan.h"

#define R5_MAX_STAGES 24

typedef struct r5_stage_time {
	char name[32];
	double seconds;
} r5_stage_time;

typedef struct r5_image_set {
	r5_header header; /* copy of the scan's */
	/* host [x, y, z, 1, map?, contrast, ..., repetition(10), phase(11), ..., slice(13)]: complex,
	 * recon matrix (x, y, z), readout oversampling removed, coils combined. */
	r5_array *images;
	r5_array *gfactor;            /* optional, same dims as images (real part), NULL otherwise */
	r5_slice_geometry *geometry; /* per slice index, copied from the scan */
	long n_slices;
	float fov_mm[3];             /* recon FOV (voxel size = fov / matrix) */
	char pipeline[32];           /* which reconstruction ran */
	char parameters[512];        /* "key=value ..." of the parameters used */
	char backend[16];            /* cpu | cuda */
	r5_stage_time stages[R5_MAX_STAGES];
	int n_stages;
} r5_image_set;

void r5_image_set_free(r5_image_set *set); /* NULL is harmless */
/* Appends a stage timing (ignored past R5_MAX_STAGES). */
void r5_image_set_add_stage(r5_image_set *set, const char *name, double seconds);

#endif
