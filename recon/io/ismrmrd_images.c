/* ISMRMRD image variables: writer and reader (ismrmrd_images.h). libismrmrd does the HDF5
 * layout; plain HDF5 calls only check whether a variable exists (so that a missing one is a
 * clean R5_ENOTFOUND instead of an HDF5 error stack) and remove one before it is rewritten.
 * The reader opens the file read-only (r5_ismrmrd_open_readonly), so many can read at once. */
#include "ismrmrd_images.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>
#include <ismrmrd/dataset.h>

#include "scan_internal.h"

/* 1 when /group/var exists, 0 when not, -1 when the file cannot be opened. remove: delete it. */
static int variable_exists(const char *path, const char *group, const char *var, int remove)
{
	hid_t file = H5Fopen(path, remove ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
	if (file < 0)
		return -1;
	char link[512];
	snprintf(link, sizeof link, "/%s/%s", group, var);
	int exists = H5Lexists(file, group, H5P_DEFAULT) > 0 && H5Lexists(file, link, H5P_DEFAULT) > 0;
	if (exists && remove)
		H5Ldelete(file, link, H5P_DEFAULT);
	H5Fclose(file);
	return exists;
}

static int group_has_xml(const char *path, const char *group)
{
	return variable_exists(path, group, "xml", 0) == 1;
}

static r5_status open_for_write(const char *path, const char *group, const char *var, const r5_image_set *like,
				ISMRMRD_Dataset *dset)
{
	struct stat st;
	int existed = stat(path, &st) == 0;
	if (existed) {
		R5_TRY(r5_io_check_hdf5_file(path));
		if (variable_exists(path, group, var, 1) < 0)
			return r5_set_error(R5_EIO, "%s: cannot open the HDF5 file for writing", path);
	}
	int need_xml = like && like->header.xml && !(existed && group_has_xml(path, group));
	if (ismrmrd_init_dataset(dset, path, group) != ISMRMRD_NOERROR ||
	    ismrmrd_open_dataset(dset, true) != ISMRMRD_NOERROR) {
		ismrmrd_close_dataset(dset);
		return r5_set_error(R5_EIO, "%s: cannot create or open ISMRMRD group '%s'", path, group);
	}
	if (need_xml && ismrmrd_write_header(dset, like->header.xml) != ISMRMRD_NOERROR) {
		ismrmrd_close_dataset(dset);
		return r5_set_error(R5_EIO, "%s: cannot write the XML header", path);
	}
	return R5_OK;
}

static void fill_image_header(ISMRMRD_ImageHeader *h, const r5_array *a, const long pos[R5_DIMS],
			      const r5_image_set *like, int flags, long index)
{
	ismrmrd_init_image_header(h);
	h->data_type = (flags & R5_ISMRMRD_MAGNITUDE) ? ISMRMRD_FLOAT : ISMRMRD_CXFLOAT;
	h->image_type = (flags & R5_ISMRMRD_MAGNITUDE) ? ISMRMRD_IMTYPE_MAGNITUDE : ISMRMRD_IMTYPE_COMPLEX;
	h->channels = (uint16_t)a->dims[R5_DIM_COIL];
	for (int d = 0; d < 3; d++) {
		h->matrix_size[d] = (uint16_t)a->dims[d];
		h->field_of_view[d] = like && like->fov_mm[d] > 0 ? like->fov_mm[d] : (float)a->dims[d];
	}
	h->contrast = (uint16_t)pos[R5_DIM_TE];
	h->set = (uint16_t)pos[R5_DIM_COEFF];
	h->repetition = (uint16_t)pos[R5_DIM_TIME];
	h->phase = (uint16_t)pos[R5_DIM_TIME2];
	h->slice = (uint16_t)pos[R5_DIM_SLICE];
	h->average = (uint16_t)pos[R5_DIM_AVG];
	h->image_series_index = (uint16_t)pos[R5_DIM_MAP];
	h->user_int[0] = (int32_t)pos[R5_DIM_MAP];
	h->image_index = (uint16_t)(index + 1);
	h->read_dir[0] = h->phase_dir[1] = h->slice_dir[2] = 1.0f;
	long slice = pos[R5_DIM_SLICE];
	if (like && like->geometry && slice < like->n_slices && like->geometry[slice].present) {
		const r5_slice_geometry *g = &like->geometry[slice];
		memcpy(h->position, g->position, sizeof h->position);
		memcpy(h->read_dir, g->read_dir, sizeof h->read_dir);
		memcpy(h->phase_dir, g->phase_dir, sizeof h->phase_dir);
		memcpy(h->slice_dir, g->slice_dir, sizeof h->slice_dir);
		memcpy(h->patient_table_position, g->table_position, sizeof h->patient_table_position);
	}
}

/* Copies the x-y-z-coil block at pos (outer dims) into the image's buffer. */
static void copy_block(void *dst, const r5_array *a, const long pos[R5_DIMS], int magnitude)
{
	long base = 0;
	for (int d = 4; d < R5_DIMS; d++)
		base += pos[d] * a->strides[d];
	long i = 0;
	for (long c = 0; c < a->dims[3]; c++)
		for (long z = 0; z < a->dims[2]; z++)
			for (long y = 0; y < a->dims[1]; y++)
				for (long x = 0; x < a->dims[0]; x++, i++) {
					float complex v = a->data[base + c * a->strides[3] + z * a->strides[2] +
								   y * a->strides[1] + x * a->strides[0]];
					if (magnitude)
						((float *)dst)[i] = cabsf(v);
					else
						((float complex *)dst)[i] = v;
				}
}

static r5_status check_writable(const char *path, const char *var, const r5_array *a)
{
	if (!path || !var || !a || a->where != R5_HOST)
		return r5_set_error(R5_EINVAL, "ISMRMRD images: need a path, a variable name and a host array");
	for (int d = 0; d < R5_DIMS; d++)
		if (a->dims[d] > 65535)
			return r5_set_error(R5_ERANGE, "ISMRMRD images %s/%s: dimension %d is %ld (ISMRMRD allows 65535)",
					    path, var, d, a->dims[d]);
	return R5_OK;
}

r5_status r5_ismrmrd_write_array_images_flags(const char *path, const char *group, const char *var,
					      const r5_array *array, const r5_image_set *like, int flags)
{
	R5_TRY(check_writable(path, var, array));
	const char *name = group && group[0] ? group : "dataset";
	ISMRMRD_Dataset dset;
	R5_TRY(open_for_write(path, name, var, like, &dset));
	long outer[R5_DIMS], pos[R5_DIMS] = {0};
	r5_dims_ones(outer);
	for (int d = 4; d < R5_DIMS; d++)
		outer[d] = array->dims[d];
	long n = r5_dims_size(outer);
	r5_status s = R5_OK;
	ISMRMRD_Image im;
	ismrmrd_init_image(&im);
	for (long i = 0; i < n && s == R5_OK; i++) {
		fill_image_header(&im.head, array, pos, like, flags, i);
		if (ismrmrd_make_consistent_image(&im) != ISMRMRD_NOERROR) {
			s = r5_set_error(R5_ENOMEM, "%s: image %ld buffer", path, i);
			break;
		}
		copy_block(im.data, array, pos, flags & R5_ISMRMRD_MAGNITUDE);
		if (ismrmrd_append_image(&dset, var, &im) != ISMRMRD_NOERROR)
			s = r5_set_error(R5_EIO, "%s: cannot append image %ld to %s/%s", path, i, name, var);
		for (int d = 4; d < R5_DIMS; d++) {
			if (++pos[d] < outer[d])
				break;
			pos[d] = 0;
		}
	}
	ismrmrd_cleanup_image(&im);
	if (ismrmrd_close_dataset(&dset) != ISMRMRD_NOERROR && s == R5_OK)
		s = r5_set_error(R5_EIO, "%s: closing the file failed", path);
	return s;
}

r5_status r5_ismrmrd_write_array_images(const char *path, const char *group, const char *var,
					const r5_array *array, const r5_image_set *like)
{
	return r5_ismrmrd_write_array_images_flags(path, group, var, array, like, 0);
}

r5_status r5_ismrmrd_write_image_set(const char *path, const char *group, const r5_image_set *set)
{
	if (!set || !set->images)
		return r5_set_error(R5_EINVAL, "ISMRMRD images %s: no images to write", path ? path : "(null)");
	return r5_ismrmrd_write_array_images(path, group, R5_ISMRMRD_IMAGES_VAR, set->images, set);
}

static float complex pixel_value(const ISMRMRD_Image *im, size_t i)
{
	switch (im->head.data_type) {
	case ISMRMRD_USHORT: return (float)((const uint16_t *)im->data)[i];
	case ISMRMRD_SHORT: return (float)((const int16_t *)im->data)[i];
	case ISMRMRD_UINT: return (float)((const uint32_t *)im->data)[i];
	case ISMRMRD_INT: return (float)((const int32_t *)im->data)[i];
	case ISMRMRD_FLOAT: return ((const float *)im->data)[i];
	case ISMRMRD_DOUBLE: return (float)((const double *)im->data)[i];
	case ISMRMRD_CXFLOAT: return ((const float complex *)im->data)[i];
	case ISMRMRD_CXDOUBLE: return (float complex)((const double complex *)im->data)[i];
	default: return 0;
	}
}

/* Image -> its place in the array (the block at the image's outer indices). */
static void image_position(const ISMRMRD_ImageHeader *h, long pos[R5_DIMS])
{
	for (int d = 0; d < R5_DIMS; d++)
		pos[d] = 0;
	pos[R5_DIM_MAP] = h->user_int[0] > 0 ? h->user_int[0] : 0;
	pos[R5_DIM_TE] = h->contrast;
	pos[R5_DIM_COEFF] = h->set;
	pos[R5_DIM_TIME] = h->repetition;
	pos[R5_DIM_TIME2] = h->phase;
	pos[R5_DIM_SLICE] = h->slice;
	pos[R5_DIM_AVG] = h->average;
}

static r5_status images_dims(const ISMRMRD_Image *images, uint32_t n, const char *path, long dims[R5_DIMS])
{
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = images[0].head.matrix_size[d] ? images[0].head.matrix_size[d] : 1;
	dims[R5_DIM_COIL] = images[0].head.channels ? images[0].head.channels : 1;
	for (uint32_t i = 0; i < n; i++) {
		const ISMRMRD_ImageHeader *h = &images[i].head;
		if (h->matrix_size[0] != images[0].head.matrix_size[0] || h->matrix_size[1] != images[0].head.matrix_size[1] ||
		    h->matrix_size[2] != images[0].head.matrix_size[2] || h->channels != images[0].head.channels)
			return r5_set_error(R5_EINVAL, "%s: image %u has another matrix or channel count than image 0", path, i);
		if (h->data_type < ISMRMRD_USHORT || h->data_type > ISMRMRD_CXDOUBLE)
			return r5_set_error(R5_EINVAL, "%s: image %u has unknown data type %u", path, i, h->data_type);
		long pos[R5_DIMS];
		image_position(h, pos);
		for (int d = 4; d < R5_DIMS; d++)
			if (pos[d] + 1 > dims[d])
				dims[d] = pos[d] + 1;
	}
	return R5_OK;
}

static r5_status read_all(ISMRMRD_Dataset *dset, const char *path, const char *var, ISMRMRD_Image *images, uint32_t n,
			  r5_array **out)
{
	for (uint32_t i = 0; i < n; i++)
		if (ismrmrd_read_image(dset, var, i, &images[i]) != ISMRMRD_NOERROR)
			return r5_set_error(R5_EIO, "%s: cannot read image %u of %s", path, i, var);
	long dims[R5_DIMS];
	R5_TRY(images_dims(images, n, path, dims));
	R5_TRY(r5_array_zeros(NULL, R5_HOST, dims, out));
	r5_array *a = *out;
	size_t block = (size_t)(dims[0] * dims[1] * dims[2] * dims[3]);
	for (uint32_t i = 0; i < n; i++) {
		long pos[R5_DIMS];
		image_position(&images[i].head, pos);
		long base = 0;
		for (int d = 4; d < R5_DIMS; d++)
			base += pos[d] * a->strides[d];
		for (size_t j = 0; j < block; j++)
			a->data[base + (long)j] = pixel_value(&images[i], j);
	}
	return R5_OK;
}

r5_status r5_ismrmrd_read_images(const char *path, const char *group, const char *var, r5_array **out)
{
	*out = NULL;
	if (!path || !var)
		return r5_set_error(R5_EINVAL, "ISMRMRD images: need a path and a variable name");
	R5_TRY(r5_io_check_hdf5_file(path)); /* so that R5_ENOTFOUND below means "no group" */
	const char *name = group && group[0] ? group : "dataset";
	ISMRMRD_Dataset dset;
	r5_status opened = r5_ismrmrd_open_readonly(path, name, &dset);
	if (opened == R5_ENOTFOUND) /* no group: no such variable either */
		return r5_set_error(R5_ENOTFOUND, "%s has no image variable %s/%s", path, name, var);
	R5_TRY(opened);
	char link[512];
	snprintf(link, sizeof link, "%s/%s", name, var);
	htri_t exists = 0;
	H5E_BEGIN_TRY
	{
		exists = H5Lexists(dset.fileid, link, H5P_DEFAULT);
	}
	H5E_END_TRY
	if (exists <= 0) {
		ismrmrd_close_dataset(&dset);
		return r5_set_error(R5_ENOTFOUND, "%s has no image variable %s/%s", path, name, var);
	}
	uint32_t n = ismrmrd_get_number_of_images(&dset, var);
	r5_status s = R5_OK;
	ISMRMRD_Image *images = n ? calloc(n, sizeof *images) : NULL;
	if (n == 0)
		s = r5_set_error(R5_ENOTFOUND, "%s: %s/%s holds no images", path, name, var);
	else if (!images)
		s = r5_set_error(R5_ENOMEM, "%s: %u image headers", path, n);
	else {
		for (uint32_t i = 0; i < n; i++)
			ismrmrd_init_image(&images[i]);
		s = read_all(&dset, path, var, images, n, out);
		for (uint32_t i = 0; i < n; i++)
			ismrmrd_cleanup_image(&images[i]);
	}
	free(images);
	ismrmrd_close_dataset(&dset);
	if (s != R5_OK) {
		r5_array_free(*out);
		*out = NULL;
	}
	return s;
}
