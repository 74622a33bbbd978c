/* Reconstruct ingest, on the ingest threads (completion-queue threads only hand messages over,
 * r5_ingest_submit): the ScanHeader is checked (size here; XML and the k-space it implies
 * against the whole budget by the scan builder it makes); every acquisition is sorted into k-space as it
 * arrives (readout oversampling removed per line); End finishes the scan and queues the job.
 * Memory is reserved from the budget as data arrives (r5_scan_builder_bytes after each batch),
 * not from what a header claims, so a header that claims 2048 slices and sends nothing holds
 * nothing. Errors name the acquisition (by scan_counter) or the header element at fault.
 * Threads: ingest threads block only on the ingest queue; one message per stream is in
 * flight (the next receive is armed after this one is processed), so a stream's messages are
 * handled in order and never concurrently. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/log.h"
#include "recon/io/bids.h"
#include "server.h"
#include "metrics.h"
#include "recon/pipeline/memory_estimate.h"

r5_status r5_ingest_header(r5_call *c, const Recon5t__V1__ScanHeader *header);
r5_status r5_ingest_batch(r5_call *c, const Recon5t__V1__AcquisitionBatch *batch);
r5_status r5_ingest_end(r5_call *c);

static r5_status read_request(r5_call *c, const Recon5t__V1__ScanHeader *h)
{
	c->params = r5_recon_defaults;
	if (h->pipeline && h->pipeline[0] && r5_recon_params_set(&c->params, "pipeline", h->pipeline) != R5_OK)
		return r5_error_context(R5_EINVAL, "ScanHeader.pipeline");
	for (size_t i = 0; i < h->n_parameters; i++) {
		const Recon5t__V1__Parameter *p = h->parameters[i];
		if (p->key && !strcmp(p->key, "deidentify")) { /* the job's, not the pipeline's */
			if (!p->value || (strcmp(p->value, "0") && strcmp(p->value, "1")))
				return r5_set_error(R5_EINVAL, "ScanHeader.parameters[%zu]: deidentify must be 0 or 1", i);
			c->deidentify = p->value[0] == '1';
			continue;
		}
		if (r5_recon_params_set(&c->params, p->key, p->value) != R5_OK)
			return r5_error_context(R5_EINVAL, "ScanHeader.parameters[%zu]", i);
	}
	for (size_t i = 0; i < h->n_outputs; i++) {
		if (h->outputs[i] == RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR)
			c->params.gfactor = 1;
		else if ((int)h->outputs[i] < 0 || h->outputs[i] > RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR)
			return r5_set_error(R5_EINVAL, "ScanHeader.outputs[%zu] = %d is not an OutputKind", i,
					    (int)h->outputs[i]);
	}
	if (h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM && !r5_dicom_out_available())
		return r5_set_error(R5_ENOTSUP, "ScanHeader.format = FORMAT_DICOM: DICOM output is not built into this "
						"server; ask for FORMAT_FLOAT32");
	for (size_t i = 0; i < h->n_outputs; i++)
		if (h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM &&
		    h->outputs[i] == RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX)
			return r5_set_error(R5_EINVAL, "ScanHeader.outputs[%zu] = OUTPUT_COMPLEX cannot be sent as DICOM", i);
	for (size_t i = 0; i < h->n_outputs; i++)
		if (h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI &&
		    h->outputs[i] != RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE)
			return r5_set_error(R5_EINVAL, "ScanHeader.outputs[%zu]: FORMAT_NIFTI carries the magnitude only", i);
	if (h->format != RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM && h->format != RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32 &&
	    h->format != RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI)
		return r5_set_error(R5_EINVAL, "ScanHeader.format = %d is not an ImageFormat", (int)h->format);
	if (h->ground_truth)
		R5_TRY(r5_quality_check_truth(h->ground_truth));
	/* client ids go into logs: keep them short and printable */
	size_t n = 0;
	for (const char *p = h->client_job_id ? h->client_job_id : ""; *p && n + 1 < sizeof c->client_job_id; p++)
		c->client_job_id[n++] = isprint((unsigned char)*p) ? *p : '?';
	c->client_job_id[n] = '\0';
	return R5_OK;
}

/* Gives back what the stream reserved beyond what the builder holds now (a real-time stream
 * releases spokes its frames no longer need: r5_realtime_offer). */
static void shrink_reservation(r5_call *c)
{
	long held = c->builder ? r5_scan_builder_bytes(c->builder) : 0;
	pthread_mutex_lock(&c->lock);
	long extra = c->reserved_bytes - held;
	if (extra > 0)
		c->reserved_bytes = held;
	pthread_mutex_unlock(&c->lock);
	if (extra > 0)
		r5_server_release(c->server, extra);
}

/* Reserves what the builder holds now beyond what the stream already reserved. */
static r5_status grow_reservation(r5_call *c)
{
	r5_server *s = c->server;
	long held = r5_scan_builder_bytes(c->builder);
	if (held <= c->reserved_bytes)
		return R5_OK;
	long delta = held - c->reserved_bytes;
	long got = r5_server_reserve(s, delta);
	if (got < 0) {
		const double mib = 1024.0 * 1024.0;
		return r5_set_error(R5_EBUSY,
				    "memory budget: this scan holds %.0f MiB after %ld acquisitions and other jobs hold "
				    "%.0f of %.0f MiB; retry later",
				    (double)held / mib, c->n_acquisitions, (double)(-got - c->reserved_bytes) / mib,
				    (double)s->memory_budget / mib);
	}
	c->reserved_bytes += got;
	return R5_OK;
}

static void send_accepted(r5_call *c)
{
	r5_server *s = c->server;
	pthread_mutex_lock(&s->lock);
	int ahead = s->queued + s->running;
	pthread_mutex_unlock(&s->lock);
	Recon5t__V1__Accepted accepted = RECON5T__V1__ACCEPTED__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	accepted.job_id = c->job_id;
	accepted.client_job_id = c->client_job_id;
	accepted.queue_position = (uint32_t)ahead;
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_ACCEPTED;
	event.accepted = &accepted;
	r5_call_send_event(c, &event);
}

r5_status r5_ingest_header(r5_call *c, const Recon5t__V1__ScanHeader *h)
{
	if (c->header_message)
		return r5_set_error(R5_EINVAL, "a second ScanHeader after %ld acquisitions", c->n_acquisitions);
	R5_TRY(read_request(c, h));
	const char *xml = h->ismrmrd_xml ? h->ismrmrd_xml : "";
	size_t xml_length = strlen(xml);
	long max_header = c->server->config.max_header_kb * 1024L;
	if ((double)xml_length > (double)max_header)
		return r5_set_error(R5_EINVAL, "ScanHeader.ismrmrd_xml is %zu bytes, more than max_header_kb = %ld KiB",
				    xml_length, c->server->config.max_header_kb);
	/* the builder parses the header once and refuses a grid that could never fit the whole
	 * budget; nothing is reserved yet (reservations follow the data, grow_reservation) */
	r5_scan_limits limits = {.max_kspace_bytes = c->server->memory_budget, .max_header_bytes = max_header};
	r5_status status = r5_scan_builder_create(xml, xml_length, &limits, &c->builder);
	if (status != R5_OK)
		return r5_error_context(status, "ScanHeader.ismrmrd_xml (%zu bytes)", xml_length);
	if (h->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI) { /* the sidecar's provenance */
		R5_TRY(r5_sha256_begin(&c->stream_hash));
		R5_TRY(r5_sha256_update(c->stream_hash, xml, xml_length));
	}
	if (r5_realtime_wanted(c))
		R5_TRY(r5_realtime_begin(c, h)); /* before Accepted: a bad real-time request is refused at once */
	const r5_header *header = r5_scan_builder_header(c->builder);
	/* the client's job id is not logged: a console may put an accession number into it; the
	 * client has our job id in Accepted to match the two */
	r5_info("job %s: accepted (client id of %zu characters, pipeline %s, %s, matrix %ldx%ldx%ld, %d coils)",
		c->job_id, strlen(c->client_job_id), c->params.pipeline,
		h->priority == RECON5T__V1__PRIORITY__PRIORITY_RESEARCH ? "research" : "console", header->enc_matrix[0],
		header->enc_matrix[1], header->enc_matrix[2], header->n_channels);
	c->t_header = r5_svc_now();
	send_accepted(c);
	return R5_OK;
}

/* One acquisition into the scan builder (gRPC batches and MRD ACQUISITION messages alike). */
static r5_status add_acquisition(r5_call *c, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
				 const float *traj, long data_bytes)
{
	r5_status status = r5_scan_builder_add(c->builder, head, data, traj);
	if (status != R5_OK) {
		const char *text = r5_last_error();
		if (strncmp(text, "acquisition", 11) != 0)
			r5_error_context(status, "acquisition %u", head->scan_counter);
		return status;
	}
	c->n_acquisitions++;
	c->bytes_in += data_bytes;
	if (c->stream_hash) { /* the same bytes whichever protocol brought them (bids.h) */
		size_t samples = head->number_of_samples;
		R5_TRY(r5_sha256_update(c->stream_hash, head, sizeof *head));
		if (traj)
			R5_TRY(r5_sha256_update(c->stream_hash, traj, sizeof *traj * samples * head->trajectory_dimensions));
		R5_TRY(r5_sha256_update(c->stream_hash, data, sizeof *data * samples * head->active_channels));
	}
	r5_metrics_ingest_bytes(data_bytes);
	return R5_OK;
}

/* After acquisitions were sorted in: the reservation follows, real-time frames and the early
 * calibration start when due. */
static r5_status after_acquisitions(r5_call *c)
{
	R5_TRY(grow_reservation(c));
	R5_TRY(r5_realtime_offer(c)); /* real time: the frames that became due go to the frame thread */
	shrink_reservation(c);        /* ... and the spokes no later frame needs went */
	r5_early_calib_offer(c); /* the coil maps start once the calibration block is in */
	return R5_OK;
}

r5_status r5_ingest_batch(r5_call *c, const Recon5t__V1__AcquisitionBatch *batch)
{
	if (!c->builder)
		return r5_set_error(R5_EINVAL, "an AcquisitionBatch (%zu acquisitions) came before the ScanHeader",
				    batch->n_acquisitions);
	for (size_t i = 0; i < batch->n_acquisitions; i++) {
		ISMRMRD_AcquisitionHeader head;
		const float complex *data = NULL;
		const float *traj = NULL;
		R5_TRY(r5_svc_acq_from_proto(batch->acquisitions[i], &head, &data, &traj));
		R5_TRY(add_acquisition(c, &head, data, traj, (long)batch->acquisitions[i]->data.len));
	}
	return after_acquisitions(c);
}

r5_status r5_ingest_acquisition(r5_call *c, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
				const float *traj)
{
	if (!c->builder)
		return r5_set_error(R5_EINVAL, "acquisition %u came before the header", head->scan_counter);
	long bytes = (long)head->number_of_samples * head->active_channels * (long)sizeof(float complex);
	R5_TRY(add_acquisition(c, head, data, traj, bytes));
	return after_acquisitions(c);
}

r5_status r5_ingest_end(r5_call *c)
{
	r5_server *s = c->server;
	if (!c->builder)
		return r5_set_error(R5_EINVAL, "End came before the ScanHeader");
	if (c->realtime)
		return r5_realtime_end(c); /* no job: the frame thread finishes the call */
	if (c->stream_hash)
		R5_TRY(r5_sha256_end(&c->stream_hash, c->stream_sha256));
	r5_scan *scan = NULL;
	r5_scan_builder *builder = c->builder;
	c->builder = NULL; /* finish hands the scan over and destroys the builder */
	R5_TRY(r5_scan_builder_finish(builder, &scan));
	double need = 0;
	r5_status estimated = r5_recon_memory_estimate(scan, &c->params, &need);
	if (estimated == R5_OK && need > (double)s->memory_budget)
		estimated = r5_set_error(R5_ENOMEM,
					 "End: the %s reconstruction of this scan needs an estimated %.0f MiB, more than the "
					 "memory budget of %.0f MiB",
					 c->params.pipeline, need / 1048576.0, (double)s->memory_budget / 1048576.0);
	if (estimated != R5_OK) {
		r5_scan_free(scan);
		return estimated;
	}
	r5_job *job = calloc(1, sizeof *job);
	if (!job) {
		r5_scan_free(scan);
		return r5_set_error(R5_ENOMEM, "End: cannot allocate the job");
	}
	job->call = c;
	job->scan = scan;
	job->need_bytes = (long)need;
	job->priority = c->header_message->header->priority == RECON5T__V1__PRIORITY__PRIORITY_RESEARCH ? 1 : 0;
	job->t_queued = c->t_end = r5_svc_now();
	r5_call_ref(c);
	c->got_end = 1;
	int position = 0;
	r5_status queued = r5_jobs_submit(s, job, &position);
	if (queued != R5_OK) {
		r5_scan_free(scan);
		free(job);
		r5_call_unref(c);
		c->got_end = 0;
		if (queued != R5_EBUSY)
			return queued; /* no usable worker: r5_jobs_submit said why */
		return r5_set_error(R5_EBUSY, "the job queue is full (max_queue = %d jobs waiting); retry later",
				    s->config.max_queue);
	}
	r5_info("job %s: %ld acquisitions, %.1f MiB in %.3f s; queued at position %d", c->job_id, c->n_acquisitions,
		(double)c->bytes_in / 1048576.0, c->t_end - c->t_start, position);
	return R5_OK;
}

/* ---------------------------------------------------------------- the ingest pool */

typedef struct r5_ingest_item {
	r5_call *call;
	grpc_byte_buffer *buffer;
	struct r5_ingest_item *next;
} r5_ingest_item;

void r5_ingest_submit(r5_call *c, grpc_byte_buffer *buffer)
{
	r5_server *s = c->server;
	r5_ingest_item *item = malloc(sizeof *item);
	pthread_mutex_lock(&s->ingest_lock);
	int inline_ = !item || s->stop_ingest || s->n_ingest_threads == 0;
	if (!inline_) {
		*item = (r5_ingest_item){c, buffer, NULL};
		if (s->ingest_tail)
			s->ingest_tail->next = item;
		else
			s->ingest_head = item;
		s->ingest_tail = item;
		pthread_cond_signal(&s->ingest_changed);
	}
	pthread_mutex_unlock(&s->ingest_lock);
	if (inline_) { /* stopping (or out of memory): process it here rather than lose it */
		free(item);
		r5_call_on_message(c, buffer);
	}
}

static void *ingest_main(void *arg)
{
	r5_server *s = arg;
	pthread_mutex_lock(&s->ingest_lock);
	for (;;) {
		while (!s->ingest_head && !s->stop_ingest)
			pthread_cond_wait(&s->ingest_changed, &s->ingest_lock);
		r5_ingest_item *item = s->ingest_head;
		if (!item)
			break; /* stopping and nothing left */
		s->ingest_head = item->next;
		if (!s->ingest_head)
			s->ingest_tail = NULL;
		pthread_mutex_unlock(&s->ingest_lock);
		r5_call_on_message(item->call, item->buffer);
		free(item);
		pthread_mutex_lock(&s->ingest_lock);
	}
	pthread_mutex_unlock(&s->ingest_lock);
	return NULL;
}

r5_status r5_ingest_start(r5_server *s)
{
	pthread_mutex_init(&s->ingest_lock, NULL);
	pthread_cond_init(&s->ingest_changed, NULL);
	s->ingest_threads = calloc((size_t)s->config.ingest_threads, sizeof *s->ingest_threads);
	if (!s->ingest_threads)
		return r5_set_error(R5_ENOMEM, "ingest threads");
	for (int i = 0; i < s->config.ingest_threads; i++) {
		if (pthread_create(&s->ingest_threads[i], NULL, ingest_main, s) != 0) {
			r5_ingest_stop(s);
			return r5_set_error(R5_ENOMEM, "cannot start ingest thread %d of %d", i + 1, s->config.ingest_threads);
		}
		s->n_ingest_threads = i + 1;
	}
	return R5_OK;
}

void r5_ingest_stop(r5_server *s)
{
	pthread_mutex_lock(&s->ingest_lock);
	s->stop_ingest = 1;
	pthread_cond_broadcast(&s->ingest_changed);
	pthread_mutex_unlock(&s->ingest_lock);
	for (int i = 0; i < s->n_ingest_threads; i++)
		pthread_join(s->ingest_threads[i], NULL);
	s->n_ingest_threads = 0;
	free(s->ingest_threads);
	s->ingest_threads = NULL;
}
