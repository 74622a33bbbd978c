/* Images back to the client: one Image event per (output kind, map, contrast, repetition,
 * phase, slice, average) volume of the image set, with the ISMRMRD image header fields and
 * geometry; then Completed with the stage timings, then status OK. Float32 pixels are the
 * magnitude / phase / complex values of the set as they are (nothing rescaled), so that they
 * match the offline `recon5t recon` bit for bit; DICOM goes through dicom_out.c. Before the
 * images: quality figures when a ground truth came (quality.c); after them: the PACS push when
 * one is configured (pacs_out.c), whose counts and reasons go into Completed: a spool or PACS
 * failure (disk full, PACS down) never turns a job whose images went out into an error. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/log.h"
#include "recon/io/bids.h"
#include "recon/io/nifti.h"
#include "server.h"

/* FORMAT_NIFTI: the magnitude series as one Image event holding the .nii.gz bytes and the BIDS
 * sidecar (written as for a BIDS dataset: no patient data; no file to hash, the stream's hash
 * instead: InputStreamHash). */
static r5_status nifti_event(r5_call *c, const r5_image_set *set, uint32_t *n_images)
{
	unsigned char *nii = NULL, *gz = NULL;
	size_t nii_length = 0, gz_length = 0;
	char *json = NULL, description[80];
	snprintf(description, sizeof description, "recon5t %s %s magnitude", R5_VERSION, set->pipeline);
	r5_bids_options opt = {NULL, 1, c->stream_sha256[0] ? c->stream_sha256 : NULL};
	r5_status s = r5_nifti_encode(set, description, &nii, &nii_length);
	if (s == R5_OK)
		s = r5_nifti_gzip(nii, nii_length, &gz, &gz_length);
	if (s == R5_OK)
		s = r5_bids_sidecar(set, &opt, &json);
	if (s == R5_OK) {
		Recon5t__V1__Image img = RECON5T__V1__IMAGE__INIT;
		Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
		uint32_t matrix[3];
		for (int i = 0; i < 3; i++)
			matrix[i] = (uint32_t)set->images->dims[i];
		img.format = RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI;
		img.kind = RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE;
		img.data.data = gz;
		img.data.len = gz_length;
		img.n_matrix_size = 3;
		img.matrix_size = matrix;
		img.n_field_of_view = 3;
		img.field_of_view = (float *)set->fov_mm;
		img.image_series_index = 1;
		img.image_index = 1;
		img.sidecar_json = json;
		event.kind_case = RECON5T__V1__RECON_EVENT__KIND_IMAGE;
		event.image = &img;
		r5_call_send_event(c, &event);
		*n_images = 1;
	}
	free(json);
	free(gz);
	free(nii);
	return s;
}

void r5_jobs_send_results(r5_job *job, const r5_image_set *set);

typedef struct volume {
	long index[R5_DIMS]; /* position over the outer dims (3..15) */
	long voxels;         /* x * y * z */
	const float complex *data;
} volume;

static void fill_geometry(const r5_image_set *set, const r5_array *a, const volume *v, Recon5t__V1__Image *img,
			  uint32_t matrix[3], float fov[3], float dirs[5][3])
{
	for (int i = 0; i < 3; i++) {
		matrix[i] = (uint32_t)a->dims[i];
		fov[i] = set->fov_mm[i];
	}
	long slice = v->index[R5_DIM_SLICE];
	memset(dirs, 0, 5 * 3 * sizeof(float));
	if (set->geometry && slice < set->n_slices && set->geometry[slice].present) {
		const r5_slice_geometry *g = &set->geometry[slice];
		memcpy(dirs[0], g->position, sizeof dirs[0]);
		memcpy(dirs[1], g->read_dir, sizeof dirs[1]);
		memcpy(dirs[2], g->phase_dir, sizeof dirs[2]);
		memcpy(dirs[3], g->slice_dir, sizeof dirs[3]);
		memcpy(dirs[4], g->table_position, sizeof dirs[4]);
	}
	img->n_matrix_size = 3;
	img->matrix_size = matrix;
	img->n_field_of_view = 3;
	img->field_of_view = fov;
	img->n_position = img->n_read_dir = img->n_phase_dir = img->n_slice_dir = img->n_patient_table_position = 3;
	img->position = dirs[0];
	img->read_dir = dirs[1];
	img->phase_dir = dirs[2];
	img->slice_dir = dirs[3];
	img->patient_table_position = dirs[4];
	img->map = (uint32_t)v->index[R5_DIM_MAP];
	img->contrast = (uint32_t)v->index[R5_DIM_TE];
	img->repetition = (uint32_t)v->index[R5_DIM_TIME];
	img->phase = (uint32_t)v->index[R5_DIM_TIME2];
	img->slice = (uint32_t)slice;
	img->average = (uint32_t)v->index[R5_DIM_AVG];
}

/* Pixels of one output kind (float32, or complex64 for OUTPUT_COMPLEX); NULL when out of memory. */
static void *pixels(const volume *v, const float complex *gfactor, Recon5t__V1__OutputKind kind, size_t *bytes)
{
	size_t n = (size_t)v->voxels;
	*bytes = n * (kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX ? sizeof(float complex) : sizeof(float));
	void *out = malloc(*bytes ? *bytes : 1);
	if (!out)
		return NULL;
	if (kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX) {
		memcpy(out, v->data, *bytes);
		return out;
	}
	float *f = out;
	for (size_t i = 0; i < n; i++) {
		if (kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE)
			f[i] = cargf(v->data[i]);
		else if (kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR)
			f[i] = crealf(gfactor[i]);
		else
			f[i] = cabsf(v->data[i]);
	}
	return out;
}

static const char *kind_name(Recon5t__V1__OutputKind kind)
{
	switch (kind) {
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE: return "phase";
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX: return "complex";
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR: return "g-factor";
	default: return "magnitude";
	}
}

/* Sends one Image event of a volume of `a` (set->images, or a frame's image); returns 0 when it
 * could not be made. */
static int send_image(r5_call *c, const r5_image_set *set, const r5_array *a, const volume *v,
		      Recon5t__V1__OutputKind kind, uint32_t image_index)
{
	const float complex *gf = set->gfactor && a == set->images ? set->gfactor->data + (v->data - a->data) : NULL;
	Recon5t__V1__Image img = RECON5T__V1__IMAGE__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	uint32_t matrix[3];
	float fov[3], dirs[5][3];
	char description[64];
	fill_geometry(set, a, v, &img, matrix, fov, dirs);
	img.kind = kind;
	img.image_series_index = (uint32_t)kind + 1;
	img.image_index = image_index;
	snprintf(description, sizeof description, "recon5t %s %s", set->pipeline, kind_name(kind));
	img.series_description = description;
	size_t bytes = 0;
	void *data = pixels(v, gf, kind, &bytes);
	if (!data)
		return 0;
	img.format = RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32;
	img.data.data = data;
	img.data.len = bytes;
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_IMAGE;
	event.image = &img;
	r5_call_send_event(c, &event);
	free(data);
	return 1;
}

int r5_images_out_frame(r5_call *c, const r5_image_set *set, const r5_array *image, long repetition,
			Recon5t__V1__OutputKind kind, uint32_t image_index)
{
	volume v = {.voxels = image->dims[0] * image->dims[1] * image->dims[2], .data = image->data};
	v.index[R5_DIM_TIME] = repetition;
	return send_image(c, set, image, &v, kind, image_index);
}

static void send_completed(r5_job *job, const r5_image_set *set, uint32_t n_images, const double *quality,
			   const r5_pacs_outcome *pacs)
{
	static char *quality_names[4] = {"nrmse", "psnr", "ssim", "scale"};
	Recon5t__V1__Completed__QualityEntry entries[4], *entry_pointers[4];
	r5_call *c = job->call;
	Recon5t__V1__Completed done = RECON5T__V1__COMPLETED__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	Recon5t__V1__StageTiming timings[R5_MAX_STAGES], *pointers[R5_MAX_STAGES];
	for (int i = 0; i < set->n_stages && i < R5_MAX_STAGES; i++) {
		recon5t__v1__stage_timing__init(&timings[i]);
		timings[i].stage = (char *)set->stages[i].name;
		timings[i].seconds = set->stages[i].seconds;
		pointers[i] = &timings[i];
	}
	done.job_id = c->job_id;
	done.n_timings = (size_t)(set->n_stages < R5_MAX_STAGES ? set->n_stages : R5_MAX_STAGES);
	done.timings = pointers;
	done.n_images = n_images;
	done.backend = (char *)set->backend;
	done.pipeline = (char *)set->pipeline;
	done.parameters = (char *)set->parameters;
	done.ingest_seconds = c->t_end - c->t_start;
	done.queue_seconds = job->t_queued > 0 ? r5_svc_now() - job->t_queued : 0;
	if (quality) {
		for (int i = 0; i < 4; i++) {
			recon5t__v1__completed__quality_entry__init(&entries[i]);
			entries[i].key = quality_names[i];
			entries[i].value = quality[i];
			entry_pointers[i] = &entries[i];
		}
		done.n_quality = 4;
		done.quality = entry_pointers;
	}
	if (pacs->attempted) {
		done.pacs_stored = (uint32_t)pacs->result.n_stored;
		done.pacs_spooled = (uint32_t)pacs->result.n_spooled;
		done.pacs_failed = (uint32_t)pacs->result.n_failed;
		done.pacs_message = (char *)pacs->message;
	}
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_COMPLETED;
	event.completed = &done;
	r5_call_send_event(c, &event);
}

static r5_status dicom_events_only(r5_call *c, const r5_image_set *set, uint32_t *n_images)
{
	return r5_dicom_out_run(c, set, 1, NULL, n_images);
}

void r5_jobs_send_results(r5_job *job, const r5_image_set *set)
{
	r5_call *c = job->call;
	const Recon5t__V1__ScanHeader *request = c->header_message->header;
	const r5_array *a = set ? set->images : NULL;
	if (!a || !r5_array_is_contiguous(a) || a->where != R5_HOST) {
		r5_set_error(R5_EINTERNAL, "the pipeline returned no contiguous host images");
		r5_call_fail(c, R5_EINTERNAL, "output");
		return;
	}
	Recon5t__V1__OutputKind magnitude = RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE;
	const Recon5t__V1__OutputKind *kinds = request->n_outputs ? request->outputs : &magnitude;
	size_t n_kinds = request->n_outputs ? request->n_outputs : 1;
	volume v = {.voxels = a->dims[0] * a->dims[1] * a->dims[2]};
	long n_volumes = r5_array_size(a) / (v.voxels ? v.voxels : 1);
	uint32_t n_images = 0;
	double quality[4];
	r5_pacs_outcome pacs;
	memset(&pacs, 0, sizeof pacs);
	/* quality first: a ground truth that does not fit fails the job before any image goes out */
	if (request->ground_truth) {
		r5_status status = r5_quality_of_set(request->ground_truth, set, quality);
		if (status != R5_OK) {
			r5_call_fail(c, status, "quality");
			return;
		}
		r5_info("job %s: nrmse %.4g psnr %.2f dB ssim %.4f against the ground truth", c->job_id, quality[0],
			quality[1], quality[2]);
	}
	int to_pacs = r5_pacs_out_wanted(c);
	if (request->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM) {
		r5_status status = to_pacs ? r5_pacs_out_job(c, set, 1, &n_images, &pacs)
					   : dicom_events_only(c, set, &n_images);
		if (status != R5_OK) {
			r5_call_fail(c, status, "dicom");
			return;
		}
		n_kinds = 0;
	} else if (request->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI) {
		r5_status status = nifti_event(c, set, &n_images);
		if (status != R5_OK) {
			r5_call_fail(c, status, "nifti");
			return;
		}
		n_kinds = 0;
	}
	for (size_t k = 0; k < n_kinds; k++) {
		if (kinds[k] == RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR && !set->gfactor) {
			r5_warn("job %s: a g-factor was asked for, pipeline %s made none", c->job_id, set->pipeline);
			continue;
		}
		for (long o = 0; o < n_volumes; o++) {
			long rest = o;
			for (int d = 3; d < R5_DIMS; d++) {
				v.index[d] = rest % a->dims[d];
				rest /= a->dims[d];
			}
			v.data = a->data + o * v.voxels;
			if (!send_image(c, set, a, &v, kinds[k], (uint32_t)o + 1)) {
				r5_call_fail(c, r5_set_error(R5_ENOMEM, "image %ld (%s) could not be encoded: %s", o + 1,
							     kind_name(kinds[k]), r5_last_error()),
					     "output");
				return;
			}
			n_images++;
		}
	}
	if (to_pacs && request->format != RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM) {
		/* the client has its images: whatever happens on the way to the PACS (disk full, PACS
		 * down, even an encoding failure) is told in Completed, the status stays OK */
		uint32_t none = 0;
		r5_pacs_out_job(c, set, 0, &none, &pacs);
	}
	send_completed(job, set, n_images, request->ground_truth ? quality : NULL, &pacs);
	r5_call_finish(c, GRPC_STATUS_OK, "");
}
