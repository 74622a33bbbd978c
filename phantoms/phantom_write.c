/* Writes a phantom scan as ISMRMRD HDF5 with libismrmrd's C API: XML header, the noise scan,
 * the sampled lines (computed in parallel in blocks, written in order, each line with its own
 * random stream so the file does not depend on the thread count), then the ground truth as the
 * image variable "ground_truth" (the object band-limited to the encoded k-space extent: what an
 * ideal reconstruction gives), the voxel-averaged object as "object" and, for the vessel-wall
 * phantom, the wall mask as "wall_mask" (same image header, 1 in the walls, 0 elsewhere) and the
 * vessels' geometry as the HDF5 table /dataset/vessels (one compound row per vessel, the fields
 * of r5_vessel_geometry; attributes: the frame, the thickness formula, the voxel size and the
 * intensities), written with plain HDF5 calls after libismrmrd has closed the file. The dynamic
 * kind (dynamic.h) writes its spokes with their trajectories instead of lines, and its truth one
 * image per frame ("ground_truth" band-limited, "object" voxel-averaged; repetition = frame). */
#include "dynamic.h"
#include "phantom.h"
#include "phantom_io.h"
#include "spectrum.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5.h>
#include <ismrmrd/dataset.h>
#include <ismrmrd/ismrmrd.h>

#define LINE_BLOCK 64

/* Everything the writer works from, made once. */
typedef struct phantom_job {
	const struct r5_phantom_params *p;
	r5_shape_set object;
	r5_coil_model coils;
	double complex *noise_lower; /* Cholesky factor of Psi, NULL without noise */
	unsigned char *mask;
	long n_sampled;
	float read[3], phase[3], slice[3];
	uint32_t scan_counter;
} phantom_job;

static void job_free(phantom_job *job)
{
	r5_coils_free(&job->coils);
	free(job->noise_lower);
	free(job->mask);
}

static r5_status job_make(const struct r5_phantom_params *p, phantom_job *job)
{
	memset(job, 0, sizeof *job);
	job->p = p;
	int three_d = r5_phantom_is_3d(p);
	R5_TRY(r5_phantom_object(p, &job->object));
	double period_mm[3];
	r5_spectrum_periods(p, period_mm);
	R5_TRY(r5_coils_for(p->uniform_coil, p->n_coils, three_d, p->fov_mm, period_mm, &job->object, &job->coils));
	r5_phantom_directions(p, job->read, job->phase, job->slice);
	job->mask = malloc((size_t)p->matrix[1] * p->matrix[2]);
	if (!job->mask)
		return r5_set_error(R5_ENOMEM, "phantom: sampling mask");
	R5_TRY(r5_sampling_mask(p->sampling, p->matrix[1], p->matrix[2], p->accel, p->calib, p->seed, job->mask,
				&job->n_sampled));
	return r5_noise_factor(p->n_coils, p->noise_sigma, p->noise_correlation, &job->noise_lower);
}

static void acquisition_head(const phantom_job *job, ISMRMRD_AcquisitionHeader *h, int n_samples)
{
	const struct r5_phantom_params *p = job->p;
	ismrmrd_init_acquisition_header(h);
	h->measurement_uid = (uint32_t)(p->seed * 2654435761u);
	h->scan_counter = job->scan_counter;
	h->acquisition_time_stamp = (uint32_t)(job->scan_counter * p->tr_ms / 2.5);
	h->number_of_samples = (uint16_t)n_samples;
	h->available_channels = h->active_channels = (uint16_t)p->n_coils;
	for (int c = 0; c < p->n_coils; c++)
		h->channel_mask[c / 64] |= 1ULL << (c % 64);
	h->center_sample = (uint16_t)(n_samples / 2);
	h->sample_time_us = (float)(5.0 / p->readout_oversampling);
	for (int i = 0; i < 3; i++) {
		h->position[i] = (float)p->position_mm[i];
		h->read_dir[i] = job->read[i], h->phase_dir[i] = job->phase[i], h->slice_dir[i] = job->slice[i];
	}
}

r5_status r5_phantom_append_acquisition(const ISMRMRD_Dataset *dset, const ISMRMRD_AcquisitionHeader *head,
					const float complex *data, const float *traj)
{
	ISMRMRD_Acquisition acq;
	ismrmrd_init_acquisition(&acq);
	acq.head = *head;
	if (ismrmrd_make_consistent_acquisition(&acq) != ISMRMRD_NOERROR) {
		ismrmrd_cleanup_acquisition(&acq);
		return r5_set_error(R5_ENOMEM, "phantom: acquisition %u", head->scan_counter);
	}
	memcpy(acq.data, data, sizeof *data * (size_t)head->number_of_samples * head->active_channels);
	if (traj)
		memcpy(acq.traj, traj, sizeof *traj * (size_t)head->number_of_samples * head->trajectory_dimensions);
	int rc = ismrmrd_append_acquisition(dset, &acq);
	ismrmrd_cleanup_acquisition(&acq);
	if (rc != ISMRMRD_NOERROR)
		return r5_set_error(R5_EIO, "phantom: writing acquisition %u failed", head->scan_counter);
	return R5_OK;
}

static r5_status write_noise(phantom_job *job, const ISMRMRD_Dataset *dset, long *n_written)
{
	const struct r5_phantom_params *p = job->p;
	int ns = p->readout_oversampling * p->matrix[0], nc = p->n_coils;
	long n_acq = job->noise_lower ? (p->n_noise_samples + ns - 1) / ns : 0;
	float complex *data = malloc(sizeof *data * (size_t)ns * nc);
	if (!data)
		return r5_set_error(R5_ENOMEM, "phantom: noise scan");
	for (long a = 0; a < n_acq; a++) {
		r5_rng rng;
		r5_rng_seed(&rng, p->seed, 0x4e015e0000ULL + (uint64_t)a);
		memset(data, 0, sizeof *data * (size_t)ns * nc);
		for (int s = 0; s < ns; s++)
			r5_noise_add(nc, job->noise_lower, &rng, data + s, ns);
		ISMRMRD_AcquisitionHeader h;
		job->scan_counter++;
		acquisition_head(job, &h, ns);
		ismrmrd_set_flag(&h.flags, ISMRMRD_ACQ_IS_NOISE_MEASUREMENT);
		r5_status s = r5_phantom_append_acquisition(dset, &h, data, NULL);
		if (s != R5_OK) {
			free(data);
			return s;
		}
	}
	free(data);
	*n_written = n_acq;
	return R5_OK;
}

/* Flags of one imaging line from its mask entry and its place in the scan. */
static void line_flags(ISMRMRD_AcquisitionHeader *h, unsigned char mask, int first, int last)
{
	if (mask & R5_MASK_CALIB)
		ismrmrd_set_flag(&h->flags, (mask & R5_MASK_IMAGING) ? ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION_AND_IMAGING
								      : ISMRMRD_ACQ_IS_PARALLEL_CALIBRATION);
	if (first) {
		ismrmrd_set_flag(&h->flags, ISMRMRD_ACQ_FIRST_IN_SLICE);
		ismrmrd_set_flag(&h->flags, ISMRMRD_ACQ_FIRST_IN_REPETITION);
	}
	if (last) {
		ismrmrd_set_flag(&h->flags, ISMRMRD_ACQ_LAST_IN_SLICE);
		ismrmrd_set_flag(&h->flags, ISMRMRD_ACQ_LAST_IN_REPETITION);
		ismrmrd_set_flag(&h->flags, ISMRMRD_ACQ_LAST_IN_MEASUREMENT);
	}
}

/* Computes a block of sampled lines in parallel (k-space + noise) into data. */
static void compute_block(const phantom_job *job, const r5_spectrum *table, const long *lines, int count,
			  float complex *data)
{
	const struct r5_phantom_params *p = job->p;
	int ns = table->nxo, nc = p->n_coils, ny = p->matrix[1];
#pragma omp parallel for schedule(dynamic, 1)
	for (int i = 0; i < count; i++) {
		float complex *line = data + (long)i * ns * nc;
		r5_spectrum_line(table, &job->coils, (int)(lines[i] % ny), (int)(lines[i] / ny), line);
		if (!job->noise_lower)
			continue;
		r5_rng rng;
		r5_rng_seed(&rng, p->seed, (uint64_t)lines[i]);
		for (int s = 0; s < ns; s++)
			r5_noise_add(nc, job->noise_lower, &rng, line + s, ns);
	}
}

static r5_status write_lines(phantom_job *job, const r5_spectrum *table, const ISMRMRD_Dataset *dset)
{
	const struct r5_phantom_params *p = job->p;
	int ns = table->nxo, nc = p->n_coils, ny = p->matrix[1];
	long total = (long)ny * p->matrix[2], done = 0;
	long lines[LINE_BLOCK];
	float complex *data = malloc(sizeof *data * (size_t)LINE_BLOCK * ns * nc);
	if (!data)
		return r5_set_error(R5_ENOMEM, "phantom: line buffer");
	r5_status status = R5_OK;
	for (long next = 0; next < total && status == R5_OK;) {
		int count = 0;
		for (; next < total && count < LINE_BLOCK; next++)
			if (job->mask[next])
				lines[count++] = next;
		compute_block(job, table, lines, count, data);
		for (int i = 0; i < count && status == R5_OK; i++, done++) {
			ISMRMRD_AcquisitionHeader h;
			job->scan_counter++;
			acquisition_head(job, &h, ns);
			h.idx.kspace_encode_step_1 = (uint16_t)(lines[i] % ny);
			h.idx.kspace_encode_step_2 = (uint16_t)(lines[i] / ny);
			line_flags(&h, job->mask[lines[i]], done == 0, done == job->n_sampled - 1);
			status = r5_phantom_append_acquisition(dset, &h, data + (long)i * ns * nc, NULL);
		}
	}
	free(data);
	return status;
}

enum reference { REF_BANDLIMITED, REF_OBJECT, REF_WALL_MASK };

static r5_status fill_reference(const phantom_job *job, enum reference which, float *out)
{
	const struct r5_phantom_params *p = job->p;
	if (which == REF_BANDLIMITED)
		return r5_phantom_bandlimited(p, &job->object, out);
	if (which == REF_OBJECT)
		return r5_phantom_ground_truth(p, &job->object, out);
	r5_vessel_wall_mask(p->matrix, p->fov_mm, out);
	return R5_OK;
}

r5_status r5_phantom_append_image(const ISMRMRD_Dataset *dset, const struct r5_phantom_params *p, const float read[3],
				  const float phase[3], const float slice_dir[3], const char *var, const char *what,
				  r5_phantom_image_place place, const float *values)
{
	ISMRMRD_Image image;
	ismrmrd_init_image(&image);
	image.head.data_type = ISMRMRD_FLOAT;
	image.head.image_type = ISMRMRD_IMTYPE_MAGNITUDE;
	image.head.channels = 1;
	image.head.measurement_uid = (uint32_t)(p->seed * 2654435761u);
	for (int i = 0; i < 3; i++) {
		image.head.matrix_size[i] = (uint16_t)p->matrix[i];
		image.head.field_of_view[i] = (float)p->fov_mm[i];
		image.head.position[i] = (float)(p->position_mm[i] + place.slice_shift_mm * slice_dir[i]);
		image.head.read_dir[i] = read[i], image.head.phase_dir[i] = phase[i];
		image.head.slice_dir[i] = slice_dir[i];
	}
	image.head.image_series_index = 0;
	image.head.slice = (uint16_t)place.slice;
	if (place.frame >= 0) {
		image.head.repetition = (uint16_t)place.frame;
		image.head.image_index = (uint16_t)(place.frame + 1);
		image.head.acquisition_time_stamp = (uint32_t)(place.time_s * 1e3 / 2.5);
		image.head.physiology_time_stamp[0] = (uint32_t)(place.time_s * 1e3);
	}
	r5_status status = R5_OK;
	if (ismrmrd_make_consistent_image(&image) != ISMRMRD_NOERROR)
		status = r5_set_error(R5_ENOMEM, "phantom: %s image", what);
	else {
		memcpy(image.data, values, sizeof *values * (size_t)p->matrix[0] * p->matrix[1] * p->matrix[2]);
		if (ismrmrd_append_image(dset, var, &image) != ISMRMRD_NOERROR)
			status = r5_set_error(R5_EIO, "phantom: writing the %s image failed", what);
	}
	ismrmrd_cleanup_image(&image);
	return status;
}

static r5_status write_reference(const phantom_job *job, const ISMRMRD_Dataset *dset, enum reference which)
{
	static const char *const var[] = {"ground_truth", "object", R5_PHANTOM_WALL_MASK_VAR};
	static const char *const what[] = {"ground-truth", "object", "wall-mask"};
	const struct r5_phantom_params *p = job->p;
	float *values = malloc(sizeof *values * (size_t)p->matrix[0] * p->matrix[1] * p->matrix[2]);
	if (!values)
		return r5_set_error(R5_ENOMEM, "phantom: %s image", what[which]);
	r5_status status = fill_reference(job, which, values);
	if (status == R5_OK)
		status = r5_phantom_append_image(dset, p, job->read, job->phase, job->slice, var[which], what[which],
						 (r5_phantom_image_place){0, -1, 0, 0}, values);
	free(values);
	return status;
}

static int set_attr_string(hid_t obj, const char *name, const char *text)
{
	hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
	H5Tset_size(type, strlen(text) + 1);
	hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	int ok = attr >= 0 && H5Awrite(attr, type, text) >= 0;
	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space), H5Tclose(type);
	return ok;
}

static int set_attr_doubles(hid_t obj, const char *name, const double *values, hsize_t n)
{
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t attr = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
	int ok = attr >= 0 && H5Awrite(attr, H5T_NATIVE_DOUBLE, values) >= 0;
	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space);
	return ok;
}

/* The compound type of one r5_vessel_geometry row (memory layout; HDF5 converts on write). */
static hid_t vessel_row_type(void)
{
	hid_t row = H5Tcreate(H5T_COMPOUND, sizeof(r5_vessel_geometry));
	hid_t name = H5Tcopy(H5T_C_S1), vec3;
	hsize_t three = 3;
	H5Tset_size(name, sizeof ((r5_vessel_geometry *)0)->name);
	vec3 = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &three);
	H5Tinsert(row, "name", offsetof(r5_vessel_geometry, name), name);
	H5Tinsert(row, "centre_mm", offsetof(r5_vessel_geometry, centre_mm), vec3);
	H5Tinsert(row, "axis", offsetof(r5_vessel_geometry, axis), vec3);
#define R5_ROW_FIELD(f) H5Tinsert(row, #f, offsetof(r5_vessel_geometry, f), H5T_NATIVE_DOUBLE)
	R5_ROW_FIELD(half_length_mm);
	R5_ROW_FIELD(lumen_radius_mm);
	R5_ROW_FIELD(wall_min_mm);
	R5_ROW_FIELD(wall_max_mm);
	R5_ROW_FIELD(plaque_shift_mm);
	R5_ROW_FIELD(plaque_angle_deg);
	R5_ROW_FIELD(cap_mm);
	R5_ROW_FIELD(core_radius_mm);
#undef R5_ROW_FIELD
	H5Tclose(name), H5Tclose(vec3);
	return row;
}

/* /dataset/vessels: the vessel-wall phantom's geometry, so that a measurement (bench/
 * vessel_wall.py) needs nothing but the file. */
static r5_status write_vessels(const struct r5_phantom_params *p, const char *path)
{
	r5_vessel_geometry rows[R5_VESSEL_COUNT];
	for (int i = 0; i < R5_VESSEL_COUNT; i++)
		r5_vessel_wall_geometry(p->fov_mm, i, &rows[i]);
	const r5_vessel_wall_intensities *c = &r5_vessel_wall_contrast;
	double voxel_mm[3] = {p->fov_mm[0] / p->matrix[0], p->fov_mm[1] / p->matrix[1], p->fov_mm[2] / p->matrix[2]};
	double intensities[5] = {c->lumen, c->tissue, c->wall, c->cap, c->core};
	hid_t file = -1, group = -1, space = -1, type = -1, dset = -1;
	int ok = 0;
	H5E_BEGIN_TRY
	{
		hsize_t n = R5_VESSEL_COUNT;
		file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
		group = file >= 0 ? H5Gopen2(file, "dataset", H5P_DEFAULT) : -1;
		space = H5Screate_simple(1, &n, NULL);
		type = vessel_row_type();
		dset = group >= 0 ? H5Dcreate2(group, "vessels", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
		ok = dset >= 0 && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0 &&
		     set_attr_string(dset, "frame",
				     "image frame, mm: voxel (i, j, k) of an [nx, ny, nz] image (HDF5 data[k][j][i]) "
				     "at ((i - nx/2) dx, (j - ny/2) dy, (k - nz/2) dz); centre line centre_mm + s axis, "
				     "|s| <= half_length_mm; plaque_angle_deg from +x towards +y") &&
		     set_attr_string(dset, "thickness",
				     "wall thickness along a ray from the centre line at angle theta from the plaque "
				     "direction, in the plane perpendicular to the axis: e cos(theta) + sqrt((R + t + "
				     "e)^2 - e^2 sin(theta)^2) - R, R = lumen_radius_mm, t = wall_min_mm, "
				     "e = plaque_shift_mm") &&
		     set_attr_doubles(dset, "voxel_mm", voxel_mm, 3) &&
		     set_attr_string(dset, "intensity_names", "lumen tissue wall cap core") &&
		     set_attr_doubles(dset, "intensities", intensities, 5);
	}
	H5E_END_TRY
	if (dset >= 0)
		H5Dclose(dset);
	if (type >= 0)
		H5Tclose(type);
	if (space >= 0)
		H5Sclose(space);
	if (group >= 0)
		H5Gclose(group);
	if (file >= 0 && H5Fclose(file) < 0)
		ok = 0;
	return ok ? R5_OK : r5_set_error(R5_EIO, "phantom: writing the vessel geometry to '%s' failed", path);
}

/* The dynamic kind's spokes (dynamic.h), in arrival order, each with its trajectory (2D, k * FOV,
 * cycles per FOV of the N x N encoded space); kspace_encode_step_1 = the spoke index. */
static r5_status write_spokes(phantom_job *job, const r5_dynamic_scan *scan, const ISMRMRD_Dataset *dset)
{
	const struct r5_phantom_params *p = job->p;
	long n = scan->n_read, nc = p->n_coils;
	float complex *data = malloc(sizeof *data * (size_t)(n * nc));
	float *traj = malloc(sizeof *traj * (size_t)(2 * n));
	r5_status status = data && traj ? R5_OK : r5_set_error(R5_ENOMEM, "phantom: spoke buffer");
	for (long j = 0; j < scan->n_spokes && status == R5_OK; j++) {
		for (long c = 0; c < nc; c++)
			memcpy(data + c * n, scan->samples->data + n * (j + scan->n_spokes * c), sizeof *data * (size_t)n);
		for (long i = 0; i < n; i++)
			for (int d = 0; d < 2; d++)
				traj[2 * i + d] = crealf(scan->traj->data[3 * (i + n * j) + d]);
		ISMRMRD_AcquisitionHeader h;
		job->scan_counter++;
		acquisition_head(job, &h, (int)n);
		h.acquisition_time_stamp = (uint32_t)((double)j * p->tr_ms / 2.5);
		h.trajectory_dimensions = 2;
		h.idx.kspace_encode_step_1 = (uint16_t)j;
		line_flags(&h, R5_MASK_IMAGING, j == 0, j == scan->n_spokes - 1);
		status = r5_phantom_append_acquisition(dset, &h, data, traj);
	}
	free(data);
	free(traj);
	return status;
}

/* One frame of the dynamic kind's truth (var "ground_truth" or "object"). */
static r5_status write_frame_image(const phantom_job *job, const ISMRMRD_Dataset *dset, const char *var,
				   const r5_array *frames, long f, double time_s)
{
	const struct r5_phantom_params *p = job->p;
	long pixels = (long)p->matrix[0] * p->matrix[1];
	float *values = malloc(sizeof *values * (size_t)pixels);
	if (!values)
		return r5_set_error(R5_ENOMEM, "phantom: %s frame %ld", var, f);
	for (long i = 0; i < pixels; i++)
		values[i] = crealf(frames->data[f * pixels + i]);
	r5_status status = r5_phantom_append_image(dset, p, job->read, job->phase, job->slice, var, var,
						   (r5_phantom_image_place){0, (int)f, time_s, 0}, values);
	free(values);
	return status;
}

static r5_status write_dynamic(phantom_job *job, const ISMRMRD_Dataset *dset)
{
	r5_dynamic_scan scan;
	R5_TRY(r5_dynamic_simulate(job->p, 1, &scan));
	r5_status status = write_spokes(job, &scan, dset);
	for (long f = 0; f < scan.n_frames && status == R5_OK; f++)
		status = write_frame_image(job, dset, "ground_truth", scan.truth, f, scan.frame_time_s[f]);
	for (long f = 0; f < scan.n_frames && status == R5_OK; f++)
		status = write_frame_image(job, dset, "object", scan.object, f, scan.frame_time_s[f]);
	r5_dynamic_free(&scan);
	return status;
}

static r5_status write_file(phantom_job *job, const char *path, struct r5_phantom_summary *summary)
{
	char *xml = NULL;
	R5_TRY(r5_phantom_header_xml(job->p, &xml));
	remove(path); /* libismrmrd appends to an existing file */
	ISMRMRD_Dataset dset;
	if (ismrmrd_init_dataset(&dset, path, "/dataset") != ISMRMRD_NOERROR ||
	    ismrmrd_open_dataset(&dset, true) != ISMRMRD_NOERROR) {
		ismrmrd_close_dataset(&dset); /* frees the names init_dataset allocated */
		free(xml);
		return r5_set_error(R5_EIO, "phantom: cannot create ISMRMRD file '%s'", path);
	}
	r5_spectrum table = {0};
	r5_status status = ismrmrd_write_header(&dset, xml) == ISMRMRD_NOERROR
				   ? R5_OK
				   : r5_set_error(R5_EIO, "phantom: writing the header of '%s' failed", path);
	free(xml);
	if (status == R5_OK)
		status = write_noise(job, &dset, &summary->n_noise_acquisitions);
	if (status == R5_OK && job->p->kind == R5_PHANTOM_DYNAMIC) {
		status = write_dynamic(job, &dset);
		if (ismrmrd_close_dataset(&dset) != ISMRMRD_NOERROR && status == R5_OK)
			status = r5_set_error(R5_EIO, "phantom: closing '%s' failed", path);
		return status;
	}
	if (status == R5_OK)
		status = r5_spectrum_make(job->p, &job->object, &job->coils, &table);
	if (status == R5_OK)
		status = write_lines(job, &table, &dset);
	r5_spectrum_free(&table);
	if (status == R5_OK)
		status = write_reference(job, &dset, REF_BANDLIMITED);
	if (status == R5_OK)
		status = write_reference(job, &dset, REF_OBJECT);
	if (status == R5_OK && job->p->kind == R5_PHANTOM_VESSEL_WALL)
		status = write_reference(job, &dset, REF_WALL_MASK);
	if (ismrmrd_close_dataset(&dset) != ISMRMRD_NOERROR && status == R5_OK)
		status = r5_set_error(R5_EIO, "phantom: closing '%s' failed", path);
	if (status == R5_OK && job->p->kind == R5_PHANTOM_VESSEL_WALL)
		status = write_vessels(job->p, path);
	return status;
}

r5_status r5_phantom_write(const struct r5_phantom_params *p, const char *path, struct r5_phantom_summary *summary)
{
	struct r5_phantom_summary local;
	if (!summary)
		summary = &local;
	memset(summary, 0, sizeof *summary);
	if (!path || !*path)
		return r5_set_error(R5_EINVAL, "phantom: no output path");
	R5_TRY(r5_phantom_check(p));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	phantom_job job;
	r5_status status = job_make(p, &job);
	if (status == R5_OK)
		status = write_file(&job, path, summary);
	if (status == R5_OK && p->kind == R5_PHANTOM_DYNAMIC) {
		summary->n_lines_total = summary->n_lines_sampled = (long)p->n_frames * p->frame_spokes;
		summary->sampled_fraction = 1;
		summary->rss_min = job.coils.rss_min, summary->rss_max = job.coils.rss_max;
	} else if (status == R5_OK) {
		long total = (long)p->matrix[1] * p->matrix[2];
		summary->n_lines_total = total;
		summary->n_lines_sampled = job.n_sampled;
		for (long i = 0; i < total; i++)
			summary->n_calib_lines += (job.mask[i] & R5_MASK_CALIB) != 0;
		summary->sampled_fraction = (double)job.n_sampled / total;
		summary->rss_min = job.coils.rss_min, summary->rss_max = job.coils.rss_max;
	}
	job_free(&job);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	summary->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
	return status == R5_OK ? R5_OK : r5_error_context(status, "phantom '%s'", path);
}
