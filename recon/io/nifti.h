/* NIfTI-1 output for research archives: the magnitude of an r5_image_set as one single-file
 * NIfTI-1 volume (.nii, or .nii.gz through zlib), float32, scl_slope 1, with qform and sform
 * (both code 1, scanner anatomical) from the geometry the DICOM writer uses (r5_dicom_plane_of,
 * dicom_plane.c), so a NIfTI voxel and the DICOM pixel it came from sit at the same place.
 *
 * Voxel (i, j, k, t): i along read (DICOM column), j along phase (DICOM row), k along the
 * partitions of a 3D slab or the slices of a 2D stack sorted by position along
 * read x phase (the order DICOM viewers use), t over every other image dimension flattened
 * (contrast, repetition, cardiac phase, ...; BART order, the first fastest).
 * Coordinates: ISMRMRD and DICOM are patient LPS, NIfTI is RAS+: x and y are negated.
 *   affine (sform) = diag(-1, -1, 1) * [read dx | phase dy | k step | centre of voxel (0,0,0)]
 * with the k step = dz slice_dir (3D) or (last slice's IPP - first's) / (n - 1) (2D stack;
 * dz read x phase for one slice). The qform holds the same map as a rotation (quaternion b, c,
 * d; qfac = pixdim[0] = -1 when the frame is left-handed) and pixdim; when the k step is not
 * perpendicular to the slice plane (slice_dir off the normal) only the sform is exact and the
 * qform uses the normal. A 2D stack whose slices are not evenly spaced cannot be one affine:
 * written with the mean step and a warning. xyzt_units: mm and s; dim_info: freq 1, phase 2,
 * slice 3. */
#ifndef R5_IO_NIFTI_H
#define R5_IO_NIFTI_H

#include <stddef.h>

#include "../core/status.h"
#include "images.h"

#define R5_NIFTI_HEADER_BYTES 348
#define R5_NIFTI_VOX_OFFSET 352 /* header + 4 bytes of (empty) extension flag */

typedef struct r5_nifti_geometry {
	long dims[4];            /* nx, ny, nk (partitions or slices), n_volumes */
	double pixdim[3];        /* mm: dx, dy, |k step| */
	double affine[3][4];     /* RAS+ mm: sform rows */
	double quatern[3];       /* b, c, d */
	double qoffset[3];       /* = affine[.][3] */
	double qfac;             /* +1 or -1 */
	int is_3d;               /* k over partitions (1) or slices (0) */
	double max_irregular_mm; /* 2D: largest distance of a slice's IPP from the affine's */
} r5_nifti_geometry;

/* The geometry of set's NIfTI volume. order (may be NULL) receives a malloc'd array of dims[2]
 * slice indices (2D: slice of each k, sorted; 3D: NULL); caller frees. Errors: no images, a
 * 3D image with several slabs (ENOTSUP), geometry the DICOM writer refuses. */
r5_status r5_nifti_geometry_of(const r5_image_set *set, r5_nifti_geometry *out, long **order);

/* The uncompressed .nii bytes (header, extension flag, float32 magnitude); description goes
 * into descrip (truncated at 79 characters; may be NULL). Caller frees *bytes. */
r5_status r5_nifti_encode(const r5_image_set *set, const char *description, unsigned char **bytes, size_t *length);

/* gzip (RFC 1952) of bytes, in memory: what a .nii.gz file holds. Caller frees *out. */
r5_status r5_nifti_gzip(const unsigned char *bytes, size_t length, unsigned char **out, size_t *out_length);

/* Writes set's volume to path: .nii.gz (gzopen/gzwrite) when path ends so, else plain .nii. */
r5_status r5_nifti_write(const r5_image_set *set, const char *description, const char *path);

#endif
