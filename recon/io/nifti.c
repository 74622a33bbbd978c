/* NIfTI-1 single-file writer (see nifti.h): geometry from r5_dicom_plane_of, the 348-byte
 * header laid out by offset (NIfTI-1 standard, nifti1.h field order) in host byte order
 * (readers detect the order from sizeof_hdr), float32 magnitude after a 4-byte empty extension
 * flag, gzip through zlib. */
#include "nifti.h"

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/log.h"
#include "dicom.h"

static double dot3(const double a[3], const double b[3])
{
	return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void cross3(const double a[3], const double b[3], double out[3])
{
	out[0] = a[1] * b[2] - a[2] * b[1];
	out[1] = a[2] * b[0] - a[0] * b[2];
	out[2] = a[0] * b[1] - a[1] * b[0];
}

typedef struct slice_key {
	double location;
	long slice;
} slice_key;

static int by_location(const void *a, const void *b)
{
	const slice_key *x = a, *y = b;
	return x->location < y->location ? -1 : x->location > y->location ? 1 : (x->slice > y->slice) - (x->slice < y->slice);
}

/* 2D: slices sorted by location along the normal, and the mean step between neighbours. */
static r5_status stack_order(const r5_image_set *set, long **order_out, double step[3], double *irregular_mm)
{
	long n = set->n_slices > 0 ? set->n_slices : 1;
	slice_key *keys = calloc((size_t)n, sizeof *keys);
	long *order = calloc((size_t)n, sizeof *order);
	r5_dicom_plane *planes = calloc((size_t)n, sizeof *planes);
	r5_status s = keys && order && planes ? R5_OK : r5_set_error(R5_ENOMEM, "NIfTI: %ld slices", n);
	for (long i = 0; i < n && s == R5_OK; i++) {
		s = r5_dicom_plane_of(set, i, 0, &planes[i]);
		keys[i].location = planes[i].slice_location_mm;
		keys[i].slice = i;
	}
	if (s == R5_OK) {
		qsort(keys, (size_t)n, sizeof *keys, by_location);
		for (long i = 0; i < n; i++)
			order[i] = keys[i].slice;
		const r5_dicom_plane *first = &planes[order[0]], *last = &planes[order[n - 1]];
		double normal[3];
		cross3(first->orientation, first->orientation + 3, normal);
		for (int c = 0; c < 3; c++)
			step[c] = n > 1 ? (last->position[c] - first->position[c]) / (double)(n - 1)
					: normal[c] * first->thickness_mm;
		*irregular_mm = 0;
		for (long k = 0; k < n; k++) {
			double d2 = 0;
			for (int c = 0; c < 3; c++) {
				double e = planes[order[k]].position[c] - (first->position[c] + (double)k * step[c]);
				d2 += e * e;
			}
			if (sqrt(d2) > *irregular_mm)
				*irregular_mm = sqrt(d2);
		}
	}
	free(keys);
	free(planes);
	if (s != R5_OK)
		free(order), order = NULL;
	*order_out = order;
	return s;
}

/* Quaternion (b, c, d with a >= 0) of a proper rotation matrix (columns = axes), Shepperd's
 * method: the largest of 1 + trace and the diagonal terms picks the stable branch. */
static void rotation_to_quaternion(double R[3][3], double q[3])
{
	double a, b, c, d, trace = R[0][0] + R[1][1] + R[2][2];
	if (trace > 0) {
		double s = 0.5 / sqrt(trace + 1.0);
		a = 0.25 / s, b = (R[2][1] - R[1][2]) * s, c = (R[0][2] - R[2][0]) * s, d = (R[1][0] - R[0][1]) * s;
	} else if (R[0][0] > R[1][1] && R[0][0] > R[2][2]) {
		double s = 2.0 * sqrt(1.0 + R[0][0] - R[1][1] - R[2][2]);
		a = (R[2][1] - R[1][2]) / s, b = 0.25 * s, c = (R[0][1] + R[1][0]) / s, d = (R[0][2] + R[2][0]) / s;
	} else if (R[1][1] > R[2][2]) {
		double s = 2.0 * sqrt(1.0 + R[1][1] - R[0][0] - R[2][2]);
		a = (R[0][2] - R[2][0]) / s, b = (R[0][1] + R[1][0]) / s, c = 0.25 * s, d = (R[1][2] + R[2][1]) / s;
	} else {
		double s = 2.0 * sqrt(1.0 + R[2][2] - R[0][0] - R[1][1]);
		a = (R[1][0] - R[0][1]) / s, b = (R[0][2] + R[2][0]) / s, c = (R[1][2] + R[2][1]) / s, d = 0.25 * s;
	}
	double sign = a < 0 ? -1.0 : 1.0;
	q[0] = sign * b, q[1] = sign * c, q[2] = sign * d;
}

/* qform = R diag(dx, dy, qfac dk) ijk + qoffset with R = [read, phase, read x phase] (RAS, a
 * proper rotation: negating x and y is one) and qfac the side of the plane the k axis goes. */
static void fill_qform(r5_nifti_geometry *g, const double read[3], const double phase[3])
{
	double normal[3], kdir[3], R[3][3];
	cross3(read, phase, normal);
	for (int r = 0; r < 3; r++)
		kdir[r] = g->affine[r][2] / g->pixdim[2];
	double along = dot3(kdir, normal);
	g->qfac = along < 0 ? -1.0 : 1.0;
	for (int r = 0; r < 3; r++) {
		R[r][0] = read[r];
		R[r][1] = phase[r];
		R[r][2] = normal[r];
		g->qoffset[r] = g->affine[r][3];
	}
	rotation_to_quaternion(R, g->quatern);
	if (fabs(fabs(along) - 1.0) > 1e-3)
		r5_warn("NIfTI: the slice axis is %.1f degrees off the slice normal; the qform uses the normal, the "
			"sform is exact", acos(fmin(1.0, fabs(along))) * 180.0 / 3.14159265358979323846);
}

r5_status r5_nifti_geometry_of(const r5_image_set *set, r5_nifti_geometry *out, long **order)
{
	memset(out, 0, sizeof *out);
	if (order)
		*order = NULL;
	if (!set || !set->images)
		return r5_set_error(R5_EINVAL, "NIfTI: image set has no images");
	const long *dims = set->images->dims;
	long n_slices = set->n_slices > 0 ? set->n_slices : 1;
	out->is_3d = dims[R5_DIM_Z] > 1;
	if (out->is_3d && n_slices > 1)
		return r5_set_error(R5_ENOTSUP, "NIfTI: a 3D image of %ld slabs is not one volume; write one slab per run",
				    n_slices);
	if (dims[R5_DIM_SLICE] != n_slices && !(n_slices == 1 && dims[R5_DIM_SLICE] == 1))
		return r5_set_error(R5_EINVAL, "NIfTI: images have %ld slices, the geometry %ld", dims[R5_DIM_SLICE],
				    n_slices);
	r5_dicom_plane first;
	double step[3];
	long *slice_order = NULL;
	if (out->is_3d) {
		r5_dicom_plane next;
		R5_TRY(r5_dicom_plane_of(set, 0, 0, &first));
		R5_TRY(r5_dicom_plane_of(set, 0, 1, &next));
		for (int c = 0; c < 3; c++)
			step[c] = next.position[c] - first.position[c];
	} else {
		R5_TRY(stack_order(set, &slice_order, step, &out->max_irregular_mm));
		r5_status s = r5_dicom_plane_of(set, slice_order[0], 0, &first);
		if (s != R5_OK) {
			free(slice_order);
			return s;
		}
	}
	out->dims[0] = dims[R5_DIM_X];
	out->dims[1] = dims[R5_DIM_Y];
	out->dims[2] = out->is_3d ? dims[R5_DIM_Z] : n_slices;
	out->dims[3] = r5_array_size(set->images) / (out->dims[0] * out->dims[1] * out->dims[2]);
	out->pixdim[0] = first.spacing[1]; /* dx: between columns */
	out->pixdim[1] = first.spacing[0];
	out->pixdim[2] = sqrt(dot3(step, step));
	const double *read = first.orientation, *phase = first.orientation + 3;
	for (int r = 0; r < 3; r++) {
		double flip = r < 2 ? -1.0 : 1.0; /* LPS -> RAS */
		out->affine[r][0] = flip * read[r] * out->pixdim[0];
		out->affine[r][1] = flip * phase[r] * out->pixdim[1];
		out->affine[r][2] = flip * step[r];
		out->affine[r][3] = flip * first.position[r];
	}
	if (!(out->pixdim[2] > 0)) {
		free(slice_order);
		return r5_set_error(R5_EINVAL, "NIfTI: slices all sit at one position; no slice axis");
	}
	double read_ras[3] = {-read[0], -read[1], read[2]}, phase_ras[3] = {-phase[0], -phase[1], phase[2]};
	fill_qform(out, read_ras, phase_ras);
	if (out->max_irregular_mm > 0.1 * out->pixdim[2])
		r5_warn("NIfTI: slices are not evenly spaced (a slice lies %.3f mm off the mean step of %.3f mm); "
			"NIfTI holds one affine", out->max_irregular_mm, out->pixdim[2]);
	if (order)
		*order = slice_order;
	else
		free(slice_order);
	return R5_OK;
}

static void put_i32(unsigned char *h, size_t at, int32_t v)
{
	memcpy(h + at, &v, sizeof v);
}

static void put_i16(unsigned char *h, size_t at, int v)
{
	int16_t x = (int16_t)v;
	memcpy(h + at, &x, sizeof x);
}

static void put_f32(unsigned char *h, size_t at, double v)
{
	float x = (float)v;
	memcpy(h + at, &x, sizeof x);
}

/* The 348-byte header, offsets of the NIfTI-1 standard. */
static void fill_header(unsigned char *h, const r5_nifti_geometry *g, const char *description)
{
	memset(h, 0, R5_NIFTI_VOX_OFFSET);
	put_i32(h, 0, R5_NIFTI_HEADER_BYTES);    /* sizeof_hdr */
	h[38] = 'r';                              /* regular */
	h[39] = (unsigned char)(1 | 2 << 2 | 3 << 4); /* dim_info: freq i, phase j, slice k */
	int ndim = g->dims[3] > 1 ? 4 : 3;
	put_i16(h, 40, ndim);
	for (int d = 0; d < 4; d++)
		put_i16(h, 42 + 2 * (size_t)d, d < ndim ? (int)g->dims[d] : 1);
	for (int d = 4; d < 7; d++)
		put_i16(h, 42 + 2 * (size_t)d, 1);
	put_i16(h, 70, 16);  /* datatype NIFTI_TYPE_FLOAT32 */
	put_i16(h, 72, 32);  /* bitpix */
	put_f32(h, 76, g->qfac); /* pixdim[0] */
	for (int d = 0; d < 3; d++)
		put_f32(h, 80 + 4 * (size_t)d, g->pixdim[d]);
	put_f32(h, 92, 0.0);              /* pixdim[4]: no volume interval stated */
	put_f32(h, 108, R5_NIFTI_VOX_OFFSET); /* vox_offset */
	put_f32(h, 112, 1.0);             /* scl_slope */
	put_f32(h, 116, 0.0);             /* scl_inter */
	put_i16(h, 120, (int)g->dims[2] - 1); /* slice_end */
	h[123] = 2 | 8;                   /* xyzt_units: NIFTI_UNITS_MM | NIFTI_UNITS_SEC */
	if (description)
		snprintf((char *)h + 148, 80, "%s", description);
	put_i16(h, 252, 1); /* qform_code NIFTI_XFORM_SCANNER_ANAT */
	put_i16(h, 254, 1); /* sform_code */
	for (int c = 0; c < 3; c++) {
		put_f32(h, 256 + 4 * (size_t)c, g->quatern[c]);
		put_f32(h, 268 + 4 * (size_t)c, g->qoffset[c]);
	}
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 4; c++)
			put_f32(h, 280 + 16 * (size_t)r + 4 * (size_t)c, g->affine[r][c]);
	memcpy(h + 344, "n+1", 4); /* magic, with its NUL; bytes 348..351: no extension */
}

r5_status r5_nifti_encode(const r5_image_set *set, const char *description, unsigned char **bytes, size_t *length)
{
	*bytes = NULL;
	*length = 0;
	r5_nifti_geometry g;
	long *order = NULL;
	R5_TRY(r5_nifti_geometry_of(set, &g, &order));
	const r5_array *im = set->images;
	long n_voxels = r5_array_size(im);
	if (g.dims[0] > 32767 || g.dims[1] > 32767 || g.dims[2] > 32767 || g.dims[3] > 32767) {
		free(order);
		return r5_set_error(R5_ERANGE, "NIfTI-1: a dimension of %ldx%ldx%ldx%ld exceeds 32767", g.dims[0],
				    g.dims[1], g.dims[2], g.dims[3]);
	}
	size_t total = R5_NIFTI_VOX_OFFSET + (size_t)n_voxels * sizeof(float);
	unsigned char *out = malloc(total);
	if (!out) {
		free(order);
		return r5_set_error(R5_ENOMEM, "NIfTI: %zu bytes", total);
	}
	fill_header(out, &g, description);
	float *voxels = (float *)(void *)(out + R5_NIFTI_VOX_OFFSET); /* 352: 4-byte aligned after malloc */
	/* volumes: every dimension but x, y, z and slice, first fastest */
	long other_dims[R5_DIMS], n_other = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if (d != R5_DIM_X && d != R5_DIM_Y && d != R5_DIM_Z && d != R5_DIM_SLICE)
			other_dims[n_other++] = d;
	long nx = g.dims[0], ny = g.dims[1], nk = g.dims[2];
	size_t v = 0;
	for (long t = 0; t < g.dims[3]; t++) {
		long offset = 0, rest = t;
		for (long o = 0; o < n_other; o++) {
			int d = (int)other_dims[o];
			offset += (rest % im->dims[d]) * im->strides[d];
			rest /= im->dims[d];
		}
		for (long k = 0; k < nk; k++) {
			long base = offset + (g.is_3d ? k * im->strides[R5_DIM_Z] : order[k] * im->strides[R5_DIM_SLICE]);
			for (long j = 0; j < ny; j++)
				for (long i = 0; i < nx; i++)
					voxels[v++] = cabsf(im->data[base + j * im->strides[R5_DIM_Y] + i * im->strides[R5_DIM_X]]);
		}
	}
	free(order);
	*bytes = out;
	*length = total;
	return R5_OK;
}

r5_status r5_nifti_gzip(const unsigned char *bytes, size_t length, unsigned char **out, size_t *out_length)
{
	*out = NULL;
	*out_length = 0;
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return r5_set_error(R5_ENOMEM, "NIfTI gzip: deflateInit2 failed");
	size_t capacity = deflateBound(&z, (uLong)length) + 64;
	unsigned char *buffer = malloc(capacity);
	if (!buffer) {
		deflateEnd(&z);
		return r5_set_error(R5_ENOMEM, "NIfTI gzip: %zu bytes", capacity);
	}
	z.next_in = (Bytef *)(uintptr_t)bytes;
	z.avail_in = (uInt)length;
	z.next_out = buffer;
	z.avail_out = (uInt)capacity;
	int rc = length > UINT32_MAX ? Z_BUF_ERROR : deflate(&z, Z_FINISH);
	size_t produced = capacity - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buffer);
		return r5_set_error(R5_EINTERNAL, "NIfTI gzip: deflate of %zu bytes did not finish (%d)", length, rc);
	}
	*out = buffer;
	*out_length = produced;
	return R5_OK;
}

static int ends_with(const char *text, const char *suffix)
{
	size_t n = strlen(text), m = strlen(suffix);
	return n >= m && !strcmp(text + n - m, suffix);
}

r5_status r5_nifti_write(const r5_image_set *set, const char *description, const char *path)
{
	unsigned char *bytes = NULL;
	size_t length = 0;
	R5_TRY(r5_nifti_encode(set, description, &bytes, &length));
	r5_status s = R5_OK;
	if (ends_with(path, ".gz")) {
		gzFile f = gzopen(path, "wb");
		if (!f) {
			s = r5_set_error(R5_EIO, "NIfTI file '%s': cannot create", path);
		} else {
			size_t done = 0;
			while (done < length && s == R5_OK) {
				unsigned chunk = length - done > (1u << 30) ? (1u << 30) : (unsigned)(length - done);
				if (gzwrite(f, bytes + done, chunk) != (int)chunk)
					s = r5_set_error(R5_EIO, "NIfTI file '%s': write failed", path);
				done += chunk;
			}
			if (gzclose(f) != Z_OK && s == R5_OK)
				s = r5_set_error(R5_EIO, "NIfTI file '%s': close failed", path);
		}
	} else {
		FILE *f = fopen(path, "wb");
		if (!f)
			s = r5_set_error(R5_EIO, "NIfTI file '%s': cannot create", path);
		else if (fwrite(bytes, 1, length, f) != length) {
			s = r5_set_error(R5_EIO, "NIfTI file '%s': write failed", path);
			fclose(f);
		} else if (fclose(f) != 0)
			s = r5_set_error(R5_EIO, "NIfTI file '%s': close failed", path);
	}
	free(bytes);
	return s;
}
