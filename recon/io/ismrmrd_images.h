/* Images in ISMRMRD HDF5 files (written and read with libismrmrd's C API).
 *
 * Names used by recon5t: group "dataset" (when NULL is passed); reconstructed images in the
 * variable "images" (R5_ISMRMRD_IMAGES_VAR); a phantom's ground truth in "ground_truth"
 * (R5_ISMRMRD_GROUND_TRUTH_VAR); g-factor maps in "gfactor".
 *
 * One ISMRMRD image per combination of the dims above z: matrix_size = x, y, z; data complex
 * float (ISMRMRD_IMTYPE_COMPLEX) unless magnitude is asked for; header fields contrast (dim 5),
 * set (6), repetition (10), phase (11), slice (13), average (14); the map index (dim 4) goes to
 * image_series_index and user_int[0]; coils (dim 3) become the image channels. field_of_view is
 * the recon FOV, position/read/phase/slice_dir the slice's geometry (LPS, mm). Writing replaces
 * an existing variable of the same name; the XML header is written when the group has none
 * (so writing into a raw-data file keeps its header). */
#ifndef R5_IO_ISMRMRD_IMAGES_H
#define R5_IO_ISMRMRD_IMAGES_H

#include "../core/array.h"
#include "images.h"

#define R5_ISMRMRD_IMAGES_VAR "images"
#define R5_ISMRMRD_GROUND_TRUTH_VAR "ground_truth"

enum r5_ismrmrd_image_flags {
	R5_ISMRMRD_MAGNITUDE = 1, /* write float |x| (ISMRMRD_IMTYPE_MAGNITUDE) instead of complex */
};

/* Writes set->images to group/var "images" with set's header and geometry. */
r5_status r5_ismrmrd_write_image_set(const char *path, const char *group, const r5_image_set *set);
/* Writes any host array [x y z coil map contrast ... slice] as images of variable `var`.
 * `like` supplies header, geometry and FOV (NULL: no XML header, unit geometry, 1 mm voxels). */
r5_status r5_ismrmrd_write_array_images(const char *path, const char *group, const char *var,
					const r5_array *array, const r5_image_set *like);
r5_status r5_ismrmrd_write_array_images_flags(const char *path, const char *group, const char *var,
					      const r5_array *array, const r5_image_set *like, int flags);
/* Reads variable `var` of group (NULL: "dataset") into a new host array
 * [x y z channels map contrast set ... repetition phase ... slice average], complex (real data
 * gets imaginary 0). R5_ENOTFOUND when the file has no such variable. */
r5_status r5_ismrmrd_read_images(const char *path, const char *group, const char *var, r5_array **out);

#endif
