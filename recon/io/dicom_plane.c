/* DICOM identity and geometry: 2.25 UUID-derived UIDs (PS3.5 §B.2, ISO/IEC 9834-8) and the
 * Image Plane attributes of an instance from the ISMRMRD slice geometry, under the convention
 * written down in dicom.h (voxel i centred at (i - N/2) d from the slice/slab centre). */
#include "dicom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"

r5_status r5_dicom_uid_generate(char uid[65])
{
	unsigned char bytes[16];
	FILE *random = fopen("/dev/urandom", "rb");
	if (!random)
		return r5_set_error(R5_EIO, "DICOM UID: cannot open /dev/urandom");
	size_t got = fread(bytes, 1, sizeof bytes, random);
	fclose(random);
	if (got != sizeof bytes)
		return r5_set_error(R5_EIO, "DICOM UID: short read from /dev/urandom");
	bytes[6] = (unsigned char)((bytes[6] & 0x0F) | 0x40); /* UUID version 4 */
	bytes[8] = (unsigned char)((bytes[8] & 0x3F) | 0x80); /* RFC 4122 variant */
	/* 128-bit big-endian integer to decimal by repeated division by 10 */
	char digits[40];
	int n = 0;
	int nonzero = 1;
	while (nonzero) {
		unsigned remainder = 0;
		nonzero = 0;
		for (int i = 0; i < 16; i++) {
			unsigned value = remainder * 256u + bytes[i];
			bytes[i] = (unsigned char)(value / 10u);
			remainder = value % 10u;
			nonzero |= bytes[i] != 0;
		}
		digits[n++] = (char)('0' + remainder);
	}
	memcpy(uid, "2.25.", 5);
	for (int i = 0; i < n; i++)
		uid[5 + i] = digits[n - 1 - i];
	uid[5 + n] = 0;
	return R5_OK;
}

int r5_dicom_uid_valid(const char *text)
{
	size_t length = text ? strlen(text) : 0;
	if (length == 0 || length > 64)
		return 0;
	const char *component = text;
	for (const char *p = text;; p++) {
		if (*p == '.' || *p == 0) {
			size_t n = (size_t)(p - component);
			if (n == 0 || (n > 1 && component[0] == '0'))
				return 0;
			if (*p == 0)
				return 1;
			component = p + 1;
		} else if (*p < '0' || *p > '9') {
			return 0;
		}
	}
}

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

static int normalise3(double v[3])
{
	double n = sqrt(dot3(v, v));
	if (!(n > 1e-6))
		return 0;
	for (int i = 0; i < 3; i++)
		v[i] /= n;
	return 1;
}

/* Orthonormal read/phase (phase orthogonalised against read), normal = read x phase, the
 * header's slice direction (normalised; the normal when absent) and the centre position. */
static r5_status slice_frame(const r5_image_set *set, long slice, double read[3], double phase[3], double normal[3],
			     double slice_dir[3], double centre[3])
{
	static const r5_slice_geometry axial = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0, 0, 0}, 1};
	const r5_slice_geometry *g = &axial;
	if (set->geometry && slice >= 0 && slice < set->n_slices && set->geometry[slice].present)
		g = &set->geometry[slice];
	else
		r5_warn("DICOM: slice %ld has no geometry; writing it axial at the origin", slice);
	for (int i = 0; i < 3; i++) {
		read[i] = g->read_dir[i];
		phase[i] = g->phase_dir[i];
		slice_dir[i] = g->slice_dir[i];
		centre[i] = g->position[i];
	}
	if (!normalise3(read) || !normalise3(phase))
		return r5_set_error(R5_EINVAL, "DICOM geometry: slice %ld has a zero read or phase direction", slice);
	double overlap = dot3(read, phase);
	if (fabs(overlap) > 1e-2)
		return r5_set_error(R5_EINVAL, "DICOM geometry: slice %ld read_dir and phase_dir are not orthogonal (cos %.4f)",
				    slice, overlap);
	for (int i = 0; i < 3; i++)
		phase[i] -= overlap * read[i];
	normalise3(phase);
	cross3(read, phase, normal);
	if (!normalise3(slice_dir)) {
		memcpy(slice_dir, normal, 3 * sizeof *normal);
	} else if (dot3(slice_dir, normal) < 0.99) {
		r5_warn("DICOM geometry: slice %ld slice_dir is not read x phase (cos %.3f); partitions follow slice_dir",
			slice, dot3(slice_dir, normal));
	}
	return R5_OK;
}

static double voxel_size(float fov_mm, long n, const char *axis)
{
	if (fov_mm > 0 && n > 0)
		return (double)fov_mm / (double)n;
	r5_warn("DICOM geometry: no FOV along %s; assuming 1 mm voxels", axis);
	return 1.0;
}

/* 2D stacks: the smallest distance along the normal between two slice centres (slices may
 * come in any order); the thickness when every slice sits at the same place. */
static double slice_gap(const r5_image_set *set, const double normal[3], double thickness)
{
	double gap = 0;
	for (long a = 0; a < set->n_slices; a++)
		for (long b = a + 1; b < set->n_slices; b++) {
			if (!set->geometry || !set->geometry[a].present || !set->geometry[b].present)
				continue;
			double step[3];
			for (int i = 0; i < 3; i++)
				step[i] = (double)set->geometry[b].position[i] - (double)set->geometry[a].position[i];
			double distance = fabs(dot3(step, normal));
			if (distance > 1e-3 && (gap == 0 || distance < gap))
				gap = distance;
		}
	return gap > 0 ? gap : thickness;
}

r5_status r5_dicom_plane_of(const r5_image_set *set, long slice, long partition, r5_dicom_plane *out)
{
	memset(out, 0, sizeof *out);
	if (!set || !set->images)
		return r5_set_error(R5_EINVAL, "DICOM geometry: image set has no images");
	const long *dims = set->images->dims;
	long nx = dims[0], ny = dims[1], nz = dims[2];
	double read[3], phase[3], normal[3], slice_dir[3], centre[3];
	R5_TRY(slice_frame(set, slice, read, phase, normal, slice_dir, centre));
	double dx = voxel_size(set->fov_mm[0], nx, "x"), dy = voxel_size(set->fov_mm[1], ny, "y");
	double dz = nz > 1 ? voxel_size(set->fov_mm[2], nz, "z") : 0.0;
	double thickness = nz > 1 ? dz : (set->fov_mm[2] > 0 ? set->fov_mm[2] : dx);
	for (int i = 0; i < 3; i++)
		out->position[i] = centre[i] - (double)(nx / 2) * dx * read[i] - (double)(ny / 2) * dy * phase[i] +
				   (nz > 1 ? (double)(partition - nz / 2) * dz * slice_dir[i] : 0.0);
	for (int i = 0; i < 3; i++) {
		out->orientation[i] = read[i];
		out->orientation[3 + i] = phase[i];
	}
	out->spacing[0] = dy;
	out->spacing[1] = dx;
	out->thickness_mm = thickness;
	out->spacing_between_mm = nz > 1 ? dz : thickness;
	if (nz <= 1 && set->n_slices > 1)
		out->spacing_between_mm = slice_gap(set, normal, thickness);
	out->slice_location_mm = dot3(out->position, normal);
	out->rows = ny;
	out->columns = nx;
	return R5_OK;
}
