/* Scans from files (scan.h): ISMRMRD HDF5 (opened read-only) through the scan builder, BART
 * .cfl k-space with a made-up minimal header; and the scan's destructor and mask indexing.
 *
 * .cfl convention: the array is taken as [x y z coil ...] as it stands. BART k-spaces whose
 * first dimension is 1 (the ESPIRiT and pics examples: 1 x 230 x 180 x 8) have their readout
 * already transformed and are undersampled in the (dim1, dim2) plane, so they are NOT relabelled:
 * x stays 1 and the sampling mask is exact per (y, z) point, which is what the ky-kz calibration
 * search and the pipelines need (relabelling dim1 as the readout would make a line "sampled"
 * when only some of its points are). Images come out [1 Y Z]; the PNG and ISMRMRD writers show
 * such a plane as a 2D image. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ismrmrd/dataset.h>

#include "cfl.h"
#include "scan.h"
#include "scan_internal.h"

void r5_scan_free(r5_scan *scan)
{
	if (!scan)
		return;
	r5_header_clear(&scan->header);
	r5_array_free(scan->kspace);
	r5_array_free(scan->traj);
	r5_array_free(scan->noise);
	free(scan->sampled);
	free(scan->calib);
	free(scan->imaging);
	free(scan->geometry);
	free(scan);
}

long r5_scan_mask_index(const r5_scan *scan, const long pos[R5_DIMS])
{
	long index = 0, stride = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		if (d != R5_DIM_X && d != R5_DIM_COIL)
			index += pos[d] * stride;
		stride *= scan->mask_dims[d];
	}
	return index;
}

/* HDF5 files start with this signature at offset 0, 512, 1024, ... (user block). */
r5_status r5_io_check_hdf5_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return r5_set_error(errno == ENOENT ? R5_ENOTFOUND : R5_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return r5_set_error(R5_EINVAL, "%s is not a regular file", path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return r5_set_error(R5_EIO, "%s: %s", path, strerror(errno));
	static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
	int found = 0;
	for (long offset = 0; !found && offset + 8 <= (long)st.st_size; offset = offset ? 2 * offset : 512) {
		unsigned char head[8];
		if (fseek(f, offset, SEEK_SET) != 0 || fread(head, 1, 8, f) != 8)
			break;
		found = !memcmp(head, signature, 8);
	}
	fclose(f);
	if (!found)
		return r5_set_error(R5_EINVAL, "%s is not an HDF5 file (no HDF5 signature; %lld bytes)", path,
				    (long long)st.st_size);
	return R5_OK;
}

r5_status r5_ismrmrd_open_readonly(const char *path, const char *group, ISMRMRD_Dataset *dset)
{
	memset(dset, 0, sizeof *dset);
	if (!path || !path[0])
		return r5_set_error(R5_EINVAL, "ISMRMRD file: empty path");
	R5_TRY(r5_io_check_hdf5_file(path));
	const char *name = group && group[0] ? group : "dataset";
	if (ismrmrd_init_dataset(dset, path, name) != ISMRMRD_NOERROR) {
		ismrmrd_close_dataset(dset);
		return r5_set_error(R5_ENOMEM, "%s: cannot initialise the ISMRMRD dataset", path);
	}
	hid_t file = -1, group_id = -1;
	H5E_BEGIN_TRY
	{
		file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		if (file >= 0)
			group_id = H5Gopen2(file, name, H5P_DEFAULT);
	}
	H5E_END_TRY
	r5_status s = R5_OK;
	if (file < 0)
		s = r5_set_error(R5_EIO, "%s: HDF5 cannot open the file read-only", path);
	else if (group_id < 0)
		s = r5_set_error(R5_ENOTFOUND, "%s has no ISMRMRD group '%s' (not an ISMRMRD file?)", path, name);
	if (group_id >= 0)
		H5Gclose(group_id);
	if (s != R5_OK) {
		if (file >= 0)
			H5Fclose(file);
		ismrmrd_close_dataset(dset);
		return s;
	}
	dset->fileid = file; /* ismrmrd_close_dataset closes it */
	return R5_OK;
}

static r5_status read_acquisitions(ISMRMRD_Dataset *dset, const char *path, r5_scan_builder *b)
{
	uint32_t n = ismrmrd_get_number_of_acquisitions(dset);
	ISMRMRD_Acquisition acq;
	ismrmrd_init_acquisition(&acq);
	r5_status s = R5_OK;
	for (uint32_t i = 0; i < n && s == R5_OK; i++) {
		if (ismrmrd_read_acquisition(dset, i, &acq) != ISMRMRD_NOERROR) {
			s = r5_set_error(R5_EIO, "%s: cannot read acquisition %u of %u", path, i, n);
			break;
		}
		s = r5_scan_builder_add(b, &acq.head, acq.data, acq.traj);
	}
	ismrmrd_cleanup_acquisition(&acq);
	return s;
}

r5_status r5_scan_read_ismrmrd(const char *path, const char *group, const r5_scan_limits *limits, r5_scan **out)
{
	*out = NULL;
	if (!path || !path[0])
		return r5_set_error(R5_EINVAL, "ISMRMRD file: empty path");
	const char *name = group && group[0] ? group : "dataset";
	ISMRMRD_Dataset dset;
	R5_TRY(r5_ismrmrd_open_readonly(path, name, &dset));
	char *xml = ismrmrd_read_header(&dset);
	r5_status s = R5_OK;
	r5_scan_builder *b = NULL;
	if (!xml)
		s = r5_set_error(R5_EINVAL, "%s: group '%s' has no XML header", path, name);
	else
		s = r5_scan_builder_create(xml, strlen(xml), limits, &b);
	free(xml);
	if (s == R5_OK)
		s = read_acquisitions(&dset, path, b);
	ismrmrd_close_dataset(&dset);
	if (s == R5_OK) {
		s = r5_scan_builder_finish(b, out);
		b = NULL;
	}
	r5_scan_builder_destroy(b);
	if (s != R5_OK)
		r5_error_context(s, "%s", path);
	return s;
}

/* The minimal ISMRMRD header a .cfl scan gets: matrices from the data, 1 mm voxels,
 * Cartesian (or `trajectory`), channel count, limits for the dimensions the data has. */
static r5_status cfl_header_kind(const long dims[R5_DIMS], const char *trajectory, r5_header *header)
{
	char xml[4096];
	int n = snprintf(xml, sizeof xml,
			 "<?xml version=\"1.0\"?>\n<ismrmrdHeader xmlns=\"http://www.ismrm.org/ISMRMRD\">"
			 "<measurementInformation><protocolName>bart-cfl</protocolName></measurementInformation>"
			 "<acquisitionSystemInformation><receiverChannels>%ld</receiverChannels>"
			 "</acquisitionSystemInformation><encoding>",
			 dims[R5_DIM_COIL]);
	static const char *const spaces[2] = {"encodedSpace", "reconSpace"};
	for (int i = 0; i < 2; i++)
		n += snprintf(xml + n, sizeof xml - (size_t)n,
			      "<%s><matrixSize><x>%ld</x><y>%ld</y><z>%ld</z></matrixSize><fieldOfView_mm><x>%ld</x>"
			      "<y>%ld</y><z>%ld</z></fieldOfView_mm></%s>",
			      spaces[i], dims[0], dims[1], dims[2], dims[0], dims[1], dims[2], spaces[i]);
	n += snprintf(xml + n, sizeof xml - (size_t)n, "<encodingLimits>");
	const struct {
		const char *name;
		int dim;
	} limits[] = {{"kspace_encoding_step_1", R5_DIM_Y}, {"kspace_encoding_step_2", R5_DIM_Z},
		      {"contrast", R5_DIM_TE},                {"set", R5_DIM_COEFF},
		      {"repetition", R5_DIM_TIME},             {"phase", R5_DIM_TIME2},
		      {"slice", R5_DIM_SLICE},                 {"average", R5_DIM_AVG}};
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
		n += snprintf(xml + n, sizeof xml - (size_t)n, "<%s><minimum>0</minimum><maximum>%ld</maximum><center>%ld</center></%s>",
			      limits[i].name, dims[limits[i].dim] - 1, i < 2 ? dims[limits[i].dim] / 2 : 0, limits[i].name);
	n += snprintf(xml + n, sizeof xml - (size_t)n, "</encodingLimits><trajectory>%s</trajectory></encoding>"
						       "</ismrmrdHeader>\n", trajectory);
	if (n >= (int)sizeof xml)
		return r5_set_error(R5_EINTERNAL, "cfl header text too long");
	return r5_header_parse(xml, (size_t)n, header);
}

static r5_status cfl_header(const long dims[R5_DIMS], r5_header *header)
{
	return cfl_header_kind(dims, "cartesian", header);
}

/* sampled = any coil has any nonzero sample along x at that (y, z, ...) position */
static r5_status cfl_masks(r5_scan *scan)
{
	const r5_array *k = scan->kspace;
	r5_dims_copy(scan->mask_dims, k->dims);
	scan->mask_dims[R5_DIM_X] = scan->mask_dims[R5_DIM_COIL] = 1;
	size_t n = (size_t)r5_dims_size(scan->mask_dims);
	scan->sampled = calloc(n, 1);
	scan->calib = calloc(n, 1);
	scan->imaging = calloc(n, 1);
	if (!scan->sampled || !scan->calib || !scan->imaging)
		return r5_set_error(R5_ENOMEM, "sampling masks (%zu lines)", n);
	long pos[R5_DIMS] = {0};
	long total = r5_array_size(k), nx = k->dims[R5_DIM_X];
	for (long i = 0; i < total; i += nx) {
		/* i is the start of a readout line; pos holds its coordinates (x = 0) */
		const float complex *line = k->data + i;
		int nonzero = 0;
		for (long x = 0; x < nx && !nonzero; x++)
			nonzero = crealf(line[x]) != 0.0f || cimagf(line[x]) != 0.0f;
		if (nonzero)
			scan->sampled[r5_scan_mask_index(scan, pos)] = 1;
		for (int d = 1; d < R5_DIMS; d++) {
			if (++pos[d] < k->dims[d])
				break;
			pos[d] = 0;
		}
	}
	memcpy(scan->imaging, scan->sampled, n);
	return R5_OK;
}

r5_status r5_scan_from_cfl(const char *path, r5_scan **out)
{
	*out = NULL;
	r5_scan *scan = calloc(1, sizeof *scan);
	if (!scan)
		return r5_set_error(R5_ENOMEM, "scan");
	r5_status s = r5_cfl_read(path, &scan->kspace);
	if (s == R5_OK && scan->kspace->dims[R5_DIM_MAP] != 1)
		s = r5_set_error(R5_EINVAL, "%s: dimension 4 (maps) is %ld; a k-space has 1 there", path,
				 scan->kspace->dims[R5_DIM_MAP]);
	if (s == R5_OK)
		s = cfl_header(scan->kspace->dims, &scan->header);
	if (s == R5_OK)
		s = cfl_masks(scan);
	if (s == R5_OK) {
		scan->n_slices = scan->kspace->dims[R5_DIM_SLICE];
		scan->geometry = calloc((size_t)scan->n_slices, sizeof *scan->geometry);
		if (!scan->geometry)
			s = r5_set_error(R5_ENOMEM, "slice geometry");
	}
	if (s != R5_OK) {
		r5_scan_free(scan);
		return s;
	}
	for (long i = 0; i < scan->n_slices; i++) {
		r5_slice_geometry *g = &scan->geometry[i];
		g->read_dir[0] = g->phase_dir[1] = g->slice_dir[2] = 1.0f;
		g->position[2] = (float)i * (float)scan->kspace->dims[R5_DIM_Z]; /* 1 mm voxels, slices abut */
		g->present = 1;
	}
	scan->readout_oversampling = 1;
	long lines = r5_dims_size(scan->mask_dims);
	scan->n_acquisitions = lines;
	*out = scan;
	return R5_OK;
}

/* --- non-Cartesian .cfl: k-space and a BART trajectory --- */

static long even_at_least(double x)
{
	long n = (long)ceil(x - 1e-4);
	n += n & 1;
	return n < 2 ? 2 : n;
}

/* The encoded matrix the trajectory implies (scan.h) and its checks. */
static r5_status cfl_traj_matrix(const r5_array *traj, const char *path, long matrix[3])
{
	double kmax[3] = {0, 0, 0};
	long n = traj->dims[1] * traj->dims[2];
	for (long j = 0; j < n; j++)
		for (int d = 0; d < 3; d++) {
			float complex v = traj->data[3 * j + d];
			if (!isfinite(crealf(v)) || !isfinite(cimagf(v)))
				return r5_set_error(R5_EINVAL, "%s: sample %ld of spoke %ld has a non-finite k%d", path,
						    j % traj->dims[1], j / traj->dims[1], d);
			if (cimagf(v) != 0.0f)
				return r5_set_error(R5_EINVAL, "%s: sample %ld of spoke %ld has k%d = %g%+gi: a BART trajectory "
						    "holds real coordinates (imaginary parts 0)", path, j % traj->dims[1],
						    j / traj->dims[1], d, (double)crealf(v), (double)cimagf(v));
			double a = fabs((double)crealf(v));
			kmax[d] = a > kmax[d] ? a : kmax[d];
		}
	long xy = even_at_least(2.0 * (kmax[0] > kmax[1] ? kmax[0] : kmax[1]));
	matrix[0] = matrix[1] = xy;
	matrix[2] = kmax[2] <= 0.5 ? 1 : even_at_least(2.0 * kmax[2]);
	return R5_OK;
}

static r5_status cfl_traj_check_dims(const r5_array *k, const r5_array *t, const char *kpath, const char *tpath)
{
	char kd[128], td[128];
	r5_dims_format(kd, sizeof kd, k->dims);
	r5_dims_format(td, sizeof td, t->dims);
	int k_ok = k->dims[0] == 1, t_ok = t->dims[0] == 3;
	for (int d = 4; d < R5_DIMS; d++)
		k_ok = k_ok && k->dims[d] == 1;
	for (int d = 3; d < R5_DIMS; d++)
		t_ok = t_ok && t->dims[d] == 1;
	if (!k_ok)
		return r5_set_error(R5_EINVAL, "%s: k-space dims %s; a non-Cartesian k-space is [1 n_read n_spokes coils]",
				    kpath, kd);
	if (!t_ok)
		return r5_set_error(R5_EINVAL, "%s: trajectory dims %s; a BART trajectory is [3 n_read n_spokes]", tpath, td);
	if (k->dims[1] != t->dims[1] || k->dims[2] != t->dims[2])
		return r5_set_error(R5_EINVAL, "%s is %s but the trajectory %s is %s: n_read and n_spokes must match", kpath,
				    kd, tpath, td);
	return R5_OK;
}

r5_status r5_scan_from_cfl_traj(const char *kspace_path, const char *traj_path, r5_scan **out)
{
	*out = NULL;
	r5_scan *scan = calloc(1, sizeof *scan);
	if (!scan)
		return r5_set_error(R5_ENOMEM, "scan");
	r5_status s = r5_cfl_read(kspace_path, &scan->kspace);
	if (s == R5_OK)
		s = r5_cfl_read(traj_path, &scan->traj);
	if (s == R5_OK)
		s = cfl_traj_check_dims(scan->kspace, scan->traj, kspace_path, traj_path);
	long matrix[3] = {0, 0, 0}, dims[R5_DIMS];
	if (s == R5_OK)
		s = cfl_traj_matrix(scan->traj, traj_path, matrix);
	if (s == R5_OK) {
		r5_dims_ones(dims);
		dims[0] = matrix[0], dims[1] = matrix[1], dims[2] = matrix[2];
		dims[R5_DIM_COIL] = scan->kspace->dims[R5_DIM_COIL];
		s = cfl_header_kind(dims, "other", &scan->header);
	}
	if (s == R5_OK) {
		r5_dims_ones(scan->mask_dims);
		scan->sampled = calloc(1, 1);
		scan->calib = calloc(1, 1);
		scan->imaging = calloc(1, 1);
		scan->geometry = calloc(1, sizeof *scan->geometry);
		if (!scan->sampled || !scan->calib || !scan->imaging || !scan->geometry)
			s = r5_set_error(R5_ENOMEM, "sampling masks");
	}
	if (s != R5_OK) {
		r5_scan_free(scan);
		return s;
	}
	scan->sampled[0] = scan->imaging[0] = 1;
	scan->n_slices = 1;
	r5_slice_geometry *g = &scan->geometry[0];
	g->read_dir[0] = g->phase_dir[1] = g->slice_dir[2] = 1.0f;
	g->present = 1;
	scan->readout_oversampling = 1;
	scan->n_acquisitions = scan->kspace->dims[2];
	*out = scan;
	return R5_OK;
}
