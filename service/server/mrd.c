/* The MRD v1 ("FIRE") listener: scanner integrations that speak the ISMRMRD streaming protocol
 * (Siemens FIRE/OpenRecon, Gadgetron clients, python-ismrmrd-server's client) reach the same
 * path as a gRPC Reconstruct stream. A connection becomes an r5_call without a gRPC call
 * (c->mrd set): its HEADER becomes the ScanHeader given to r5_ingest_header, each ACQUISITION
 * goes to r5_ingest_acquisition, CLOSE to r5_ingest_end; the job is queued, run by a worker and
 * its events (calls.c enqueue → r5_mrd_deliver) are turned into MRD messages: Image → IMAGE,
 * Error → TEXT "ERR ...", Progress/Accepted → TEXT "DBG ...", the final status → CLOSE.
 * Messages are decoded by service/common/mrd_wire.c (pure, fuzzed).
 * Threads: one accept thread (poll with a timeout, so that stop is seen), one thread per
 * connection that reads and blocks on its socket; workers write images on the connection's
 * socket under its write lock. Plaintext only: loopback, or mrd_insecure = 1 with mrd_allow. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "recon/core/log.h"
#include "server.h"
#include "service/common/mrd_wire.h"

typedef struct r5_mrd_listener {
	int fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int connections; /* connection threads running */
} r5_mrd_listener;

enum { MRD_FLOAT32, MRD_UINT16, MRD_INT16 };

typedef struct r5_mrd_conn {
	r5_server *server;
	int fd;
	char peer[64];
	pthread_mutex_t write_lock;
	pthread_cond_t done_cond;
	int done;        /* the final status was delivered */
	int error_sent;  /* a TEXT ERR went out */
	int broken;      /* a write failed: the peer is gone */
	int data_type;   /* MRD_FLOAT32 ... */
	long n_images;
} r5_mrd_conn;

/* ---------------------------------------------------------------- socket I/O */

static r5_status sock_read(void *user, void *dst, size_t n, size_t *got)
{
	r5_mrd_conn *m = user;
	size_t done = 0;
	while (done < n) {
		ssize_t r = recv(m->fd, (char *)dst + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return done == n ? R5_OK : R5_EIO;
}

static r5_status sock_write(void *user, const void *src, size_t n)
{
	r5_mrd_conn *m = user;
	size_t done = 0;
	while (done < n && !m->broken) {
		ssize_t w = send(m->fd, (const char *)src + done, n - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			m->broken = 1;
		else
			done += (size_t)w;
	}
	return done == n ? R5_OK : R5_EIO;
}

/* TEXT "<level> text", under the write lock. */
static void send_text_locked(r5_mrd_conn *m, const char *level, const char *text)
{
	char line[1200];
	snprintf(line, sizeof line, "%s %s", level, text);
	(void)r5_mrd_write_text(sock_write, m, R5_MRD_TEXT, line);
}

static void send_text(r5_mrd_conn *m, const char *level, const char *text)
{
	pthread_mutex_lock(&m->write_lock);
	send_text_locked(m, level, text);
	pthread_mutex_unlock(&m->write_lock);
}

/* ---------------------------------------------------------------- images out */

static void image_header_from(const Recon5t__V1__Image *img, ISMRMRD_ImageHeader *h)
{
	ismrmrd_init_image_header(h);
	for (size_t i = 0; i < 3 && i < img->n_matrix_size; i++)
		h->matrix_size[i] = (uint16_t)img->matrix_size[i];
	for (size_t i = 0; i < 3; i++) {
		h->field_of_view[i] = i < img->n_field_of_view ? img->field_of_view[i] : 0;
		h->position[i] = i < img->n_position ? img->position[i] : 0;
		h->read_dir[i] = i < img->n_read_dir ? img->read_dir[i] : 0;
		h->phase_dir[i] = i < img->n_phase_dir ? img->phase_dir[i] : 0;
		h->slice_dir[i] = i < img->n_slice_dir ? img->slice_dir[i] : 0;
		h->patient_table_position[i] = i < img->n_patient_table_position ? img->patient_table_position[i] : 0;
	}
	h->channels = 1;
	h->average = (uint16_t)img->average;
	h->slice = (uint16_t)img->slice;
	h->contrast = (uint16_t)img->contrast;
	h->phase = (uint16_t)img->phase;
	h->repetition = (uint16_t)img->repetition;
	h->set = (uint16_t)img->set;
	h->image_index = (uint16_t)img->image_index;
	h->image_series_index = (uint16_t)img->image_series_index; /* one series per output kind */
	switch (img->kind) {
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE: h->image_type = ISMRMRD_IMTYPE_PHASE; break;
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX: h->image_type = ISMRMRD_IMTYPE_COMPLEX; break;
	default: h->image_type = ISMRMRD_IMTYPE_MAGNITUDE; break;
	}
	h->data_type = img->kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX ? ISMRMRD_CXFLOAT : ISMRMRD_FLOAT;
}

/* float32 → uint16/int16 scaled so that the largest value is 4095 (12 bits, as consoles
 * store); the window covers the whole range. */
static void *to_integers(const float *f, size_t n, int signed_, double *scale)
{
	float top = 0;
	for (size_t i = 0; i < n; i++)
		top = fabsf(f[i]) > top ? fabsf(f[i]) : top;
	*scale = top > 0 ? 4095.0 / top : 1.0;
	uint16_t *out = malloc(n * sizeof *out + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		double v = lrint(f[i] * *scale);
		if (signed_) {
			int16_t s = (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
			memcpy(&out[i], &s, sizeof s);
		} else
			out[i] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
	}
	return out;
}

static void send_image(r5_mrd_conn *m, const Recon5t__V1__Image *img)
{
	ISMRMRD_ImageHeader h;
	image_header_from(img, &h);
	size_t n = (size_t)h.matrix_size[0] * h.matrix_size[1] * h.matrix_size[2];
	const void *data = img->data.data;
	size_t bytes = img->data.len;
	void *converted = NULL;
	double scale = 1;
	char window[256] = "";
	if (m->data_type != MRD_FLOAT32 && h.data_type == ISMRMRD_FLOAT && bytes == n * sizeof(float)) {
		converted = to_integers((const float *)img->data.data, n, m->data_type == MRD_INT16, &scale);
		if (converted) {
			data = converted;
			bytes = n * 2;
			h.data_type = m->data_type == MRD_INT16 ? ISMRMRD_SHORT : ISMRMRD_USHORT;
			snprintf(window, sizeof window,
				 "<meta><name>WindowCenter</name><value>2048</value></meta>"
				 "<meta><name>WindowWidth</name><value>4096</value></meta>"
				 "<meta><name>ScaleFactor</name><value>%.9g</value></meta>",
				 scale);
		}
	}
	char attributes[1024];
	snprintf(attributes, sizeof attributes,
		 "<?xml version=\"1.0\"?><ismrmrdMeta>"
		 "<meta><name>DataRole</name><value>Image</value></meta>"
		 "<meta><name>ImageProcessingHistory</name><value>RECON5T</value></meta>"
		 "<meta><name>SequenceDescriptionAdditional</name><value>%s</value></meta>%s"
		 "</ismrmrdMeta>",
		 img->series_description && img->series_description[0] ? img->series_description : "recon5t", window);
	pthread_mutex_lock(&m->write_lock);
	(void)r5_mrd_write_image(sock_write, m, &h, attributes, data, bytes);
	m->n_images++;
	pthread_mutex_unlock(&m->write_lock);
	free(converted);
}

void r5_mrd_deliver(r5_call *c, grpc_byte_buffer *buffer, grpc_status_code code, const char *message)
{
	r5_mrd_conn *m = c->mrd;
	if (!buffer) { /* the final status */
		pthread_mutex_lock(&m->write_lock);
		if (code != GRPC_STATUS_OK && !m->error_sent) {
			send_text_locked(m, "ERR", message ? message : r5_svc_grpc_code_name(code));
			m->error_sent = 1;
		}
		m->done = 1;
		pthread_cond_broadcast(&m->done_cond);
		pthread_mutex_unlock(&m->write_lock);
		return;
	}
	ProtobufCMessage *unpacked = NULL;
	r5_status status = r5_svc_unpack(buffer, &recon5t__v1__recon_event__descriptor, "ReconEvent", &unpacked);
	grpc_byte_buffer_destroy(buffer);
	if (status != R5_OK)
		return;
	Recon5t__V1__ReconEvent *e = (Recon5t__V1__ReconEvent *)unpacked;
	char text[1100];
	switch (e->kind_case) {
	case RECON5T__V1__RECON_EVENT__KIND_IMAGE:
		send_image(m, e->image);
		break;
	case RECON5T__V1__RECON_EVENT__KIND_ERROR:
		pthread_mutex_lock(&m->write_lock);
		send_text_locked(m, "ERR", e->error->message ? e->error->message : "error");
		m->error_sent = 1;
		pthread_mutex_unlock(&m->write_lock);
		break;
	case RECON5T__V1__RECON_EVENT__KIND_ACCEPTED:
		snprintf(text, sizeof text, "recon5t job %s accepted, queue position %u", e->accepted->job_id,
			 e->accepted->queue_position);
		send_text(m, "DBG", text);
		break;
	case RECON5T__V1__RECON_EVENT__KIND_PROGRESS:
		snprintf(text, sizeof text, "stage %s %.0f%%", e->progress->stage ? e->progress->stage : "",
			 100.0 * e->progress->fraction);
		send_text(m, "DBG", text);
		break;
	case RECON5T__V1__RECON_EVENT__KIND_COMPLETED:
		snprintf(text, sizeof text, "recon5t job %s completed: %u images, pipeline %s, backend %s",
			 e->completed->job_id, e->completed->n_images, e->completed->pipeline, e->completed->backend);
		send_text(m, "DBG", text);
		break;
	default:
		break;
	}
	protobuf_c_message_free_unpacked(unpacked, NULL);
}

/* ---------------------------------------------------------------- configuration of a connection */

typedef struct mrd_request {
	char pipeline[64];
	char *keys[64], *values[64];
	int n;
} mrd_request;

static void request_free(mrd_request *r)
{
	for (int i = 0; i < r->n; i++) {
		free(r->keys[i]);
		free(r->values[i]);
	}
	r->n = 0;
}

/* The connection's own keys (data_type) are taken here; recon5t's parameter keys are kept for
 * the ScanHeader (checked there as on gRPC); keys recon5t does not know get a WRN. */
static r5_status request_add(r5_mrd_conn *m, mrd_request *r, const char *key, const char *value)
{
	if (!strcmp(key, "config")) {
		if (strcmp(value, "default") && strlen(value) < sizeof r->pipeline)
			snprintf(r->pipeline, sizeof r->pipeline, "%s", value);
		return R5_OK;
	}
	if (!strcmp(key, "data_type") || !strcmp(key, "datatype")) {
		if (!strcmp(value, "float32") || !strcmp(value, "float"))
			m->data_type = MRD_FLOAT32;
		else if (!strcmp(value, "uint16"))
			m->data_type = MRD_UINT16;
		else if (!strcmp(value, "int16"))
			m->data_type = MRD_INT16;
		else
			return r5_set_error(R5_EINVAL, "parameter data_type = %.40s: expected float32, uint16 or int16", value);
		return R5_OK;
	}
	r5_recon_params scratch = r5_recon_defaults;
	if (strcmp(key, "deidentify") && r5_recon_params_set(&scratch, key, value) != R5_OK &&
	    !strncmp(r5_last_error(), "unknown parameter", 17)) {
		char text[200];
		snprintf(text, sizeof text, "parameter %.60s is not a recon5t parameter: ignored", key);
		send_text(m, "WRN", text);
		return R5_OK;
	}
	if (r->n == 64)
		return r5_set_error(R5_EINVAL, "more than 64 parameters");
	r->keys[r->n] = strdup(key);
	r->values[r->n] = strdup(value);
	if (!r->keys[r->n] || !r->values[r->n])
		return r5_set_error(R5_ENOMEM, "parameters");
	r->n++;
	return R5_OK;
}

/* CONFIG_TEXT: "key=value" pairs separated by white space, newlines or ';'. */
static r5_status parse_pairs(r5_mrd_conn *m, mrd_request *r, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		return r5_set_error(R5_ENOMEM, "CONFIG_TEXT");
	r5_status status = R5_OK;
	for (char *t = strtok_r(copy, " \t\r\n;", &save); t && status == R5_OK; t = strtok_r(NULL, " \t\r\n;", &save)) {
		char *eq = strchr(t, '=');
		if (!eq) {
			status = r5_set_error(R5_EINVAL, "CONFIG_TEXT: \"%.40s\" is not key=value", t);
			break;
		}
		*eq = '\0';
		status = request_add(m, r, t, eq + 1);
	}
	free(copy);
	return status;
}

/* TEXT with OpenRecon JSON: the flat members of its "parameters" object ("key": "text" |
 * number | true/false). Other TEXT is a log line from the console: ignored. */
static r5_status parse_json_parameters(r5_mrd_conn *m, mrd_request *r, const char *text)
{
	const char *p = strstr(text, "\"parameters\"");
	if (text[0] != '{' || !p)
		return R5_OK;
	p = strchr(p, '{');
	if (!p)
		return r5_set_error(R5_EINVAL, "TEXT: \"parameters\" is not an object");
	p++;
	for (;;) {
		while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')
			p++;
		if (*p == '}' || !*p)
			return R5_OK;
		if (*p != '"')
			return r5_set_error(R5_EINVAL, "TEXT: \"parameters\" holds something other than \"key\": value");
		const char *k = ++p;
		while (*p && *p != '"')
			p++;
		if (!*p || p - k > 63)
			return r5_set_error(R5_EINVAL, "TEXT: a parameter name is unterminated or too long");
		char key[64], value[256];
		snprintf(key, sizeof key, "%.*s", (int)(p - k), k);
		p++;
		while (*p == ' ' || *p == ':')
			p++;
		const char *v = p;
		if (*p == '"') {
			v = ++p;
			while (*p && *p != '"')
				p++;
			if (!*p)
				return r5_set_error(R5_EINVAL, "TEXT: the value of %s is unterminated", key);
			snprintf(value, sizeof value, "%.*s", (int)(p - v), v);
			p++;
		} else {
			while (*p && *p != ',' && *p != '}' && *p != ' ' && *p != '\n')
				p++;
			snprintf(value, sizeof value, "%.*s", (int)(p - v), v);
			if (!strcmp(value, "true"))
				strcpy(value, "1");
			else if (!strcmp(value, "false"))
				strcpy(value, "0");
		}
		/* OpenRecon sends every value of its UI (recon5t openrecon-label): one left at its
		 * default changes nothing and is dropped, so that e.g. iters = 30 does not make a
		 * cartesian run refuse "iters does not apply"; a value the user changed is checked */
		if (strcmp(key, "config") && r5_recon_params_is_default(key, value))
			continue;
		R5_TRY(request_add(m, r, key, value));
	}
}

/* The ScanHeader an MRD HEADER stands for, kept by the call as a gRPC stream's is (packed and
 * unpacked, so that call_destroy frees it the same way). */
static r5_status make_header_message(r5_call *c, const mrd_request *r, const char *xml, Recon5t__V1__ScanMessage **out)
{
	Recon5t__V1__ScanHeader header = RECON5T__V1__SCAN_HEADER__INIT;
	Recon5t__V1__ScanMessage message = RECON5T__V1__SCAN_MESSAGE__INIT;
	Recon5t__V1__Parameter params[64], *param_ptrs[64];
	for (int i = 0; i < r->n; i++) {
		recon5t__v1__parameter__init(&params[i]);
		params[i].key = r->keys[i];
		params[i].value = r->values[i];
		param_ptrs[i] = &params[i];
	}
	header.ismrmrd_xml = (char *)xml;
	header.pipeline = (char *)r->pipeline;
	header.n_parameters = (size_t)r->n;
	header.parameters = param_ptrs;
	header.format = RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32;
	header.priority = c->role == R5_ROLE_RESEARCH ? RECON5T__V1__PRIORITY__PRIORITY_RESEARCH
						      : RECON5T__V1__PRIORITY__PRIORITY_CONSOLE;
	header.skip_pacs = !c->server->config.mrd_pacs;
	message.kind_case = RECON5T__V1__SCAN_MESSAGE__KIND_HEADER;
	message.header = &header;
	size_t n = protobuf_c_message_get_packed_size(&message.base);
	uint8_t *bytes = malloc(n ? n : 1);
	if (!bytes)
		return r5_set_error(R5_ENOMEM, "HEADER");
	protobuf_c_message_pack(&message.base, bytes);
	*out = recon5t__v1__scan_message__unpack(NULL, n, bytes);
	free(bytes);
	return *out ? R5_OK : r5_set_error(R5_ENOMEM, "HEADER");
}

/* ---------------------------------------------------------------- a connection */

static r5_call *new_call(r5_server *s, r5_mrd_conn *m)
{
	r5_call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 1;
	c->server = s;
	c->kind = CALL_RECONSTRUCT;
	c->mrd = m;
	c->t_start = r5_svc_now();
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_metadata);
	c->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	snprintf(c->peer, sizeof c->peer, "%s", m->peer);
	snprintf(c->peer_full, sizeof c->peer_full, "mrd:%s", m->peer);
	snprintf(c->identity, sizeof c->identity, "mrd:%s", m->peer);
	c->role = r5_role_parse(s->config.mrd_role, strlen(s->config.mrd_role));
	c->authorized = 1;
	pthread_mutex_lock(&s->lock);
	r5_job_id_next(s, c->job_id, sizeof c->job_id);
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* Reads messages until CLOSE, an error or the peer going; returns 1 when a job was queued
 * (the caller waits for its final status). */
static int serve_messages(r5_mrd_conn *m, r5_call *c, mrd_request *r)
{
	const r5_mrd_limits limits = {
		.max_text_bytes = 1u << 20,
		.max_header_bytes = (uint64_t)m->server->config.max_header_kb * 1024u,
		.max_data_bytes = (uint64_t)m->server->config.max_message_mb << 20,
	};
	int got_header = 0;
	for (;;) {
		r5_mrd_message msg;
		r5_status status = r5_mrd_read(sock_read, m, &limits, &msg);
		if (status == R5_ENOTFOUND) { /* the peer closed between messages */
			if (got_header)
				r5_info("job %s: MRD peer closed the connection before CLOSE", c->job_id);
			return 0;
		}
		if (status == R5_OK) {
			switch (msg.id) {
			case R5_MRD_CONFIG_FILE:
				status = request_add(m, r, "config", msg.config_file);
				break;
			case R5_MRD_CONFIG_TEXT:
				status = parse_pairs(m, r, msg.text);
				break;
			case R5_MRD_TEXT:
				status = parse_json_parameters(m, r, msg.text);
				break;
			case R5_MRD_QUERY:
				status = r5_set_error(R5_ENOTSUP, "MRD QUERY \"%.60s\" is not answered by recon5t", msg.text);
				break;
			case R5_MRD_HEADER:
				if (got_header) {
					status = r5_set_error(R5_EINVAL, "a second MRD HEADER");
					break;
				}
				Recon5t__V1__ScanMessage *header = NULL;
				status = make_header_message(c, r, msg.text, &header);
				if (status == R5_OK) {
					r5_security_cap_priority(c, header->header);
					status = r5_ingest_header(c, header->header);
				}
				if (status == R5_OK)
					c->header_message = header; /* kept for the job, as on gRPC */
				else if (header)
					protobuf_c_message_free_unpacked(&header->base, NULL);
				got_header = 1;
				break;
			case R5_MRD_ACQUISITION:
				status = r5_ingest_acquisition(c, &msg.acquisition, msg.samples, msg.trajectory);
				break;
			case R5_MRD_CLOSE:
				status = got_header ? r5_ingest_end(c) : R5_OK;
				r5_mrd_message_clear(&msg);
				if (status == R5_OK)
					return got_header;
				break;
			case R5_MRD_IMAGE:
				status = r5_set_error(R5_ENOTSUP, "MRD IMAGE input is not reconstructed by recon5t");
				break;
			default: /* WAVEFORM: read and ignored */
				break;
			}
			r5_mrd_message_clear(&msg);
		}
		if (status != R5_OK) {
			r5_call_release_memory(c);
			r5_call_fail(c, status, got_header ? "ingest" : "configuration");
			return 0;
		}
	}
}

static void *connection_main(void *arg)
{
	r5_mrd_conn *m = arg;
	r5_server *s = m->server;
	r5_call *c = new_call(s, m);
	mrd_request request = {.pipeline = ""};
	if (c) {
		int queued = serve_messages(m, c, &request);
		if (!queued && !r5_call_is_finished(c)) { /* vanished mid-stream: nothing more to say */
			atomic_store(&c->cancelled, 1);
			r5_call_finish(c, GRPC_STATUS_CANCELLED, "the MRD peer closed the connection");
		}
		pthread_mutex_lock(&m->write_lock);
		while (!m->done)
			pthread_cond_wait(&m->done_cond, &m->write_lock);
		(void)r5_mrd_write_id(sock_write, m, R5_MRD_CLOSE);
		pthread_mutex_unlock(&m->write_lock);
		r5_info("job %s: MRD connection from %s ends, %ld images sent", c->job_id, m->peer, m->n_images);
		r5_call_release_memory(c);
		r5_call_unref(c);
	}
	request_free(&request);
	shutdown(m->fd, SHUT_RDWR);
	close(m->fd);
	/* the job's last reference may still be going: the call was freed by whoever held it last,
	 * and that happens after its final status was delivered (m->done) */
	r5_mrd_listener *l = s->mrd;
	pthread_mutex_destroy(&m->write_lock);
	pthread_cond_destroy(&m->done_cond);
	free(m);
	pthread_mutex_lock(&l->lock);
	l->connections--;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* ---------------------------------------------------------------- the listener */

static int peer_allowed(const r5_server_config *cfg, const char *peer)
{
	if (!cfg->mrd_allow[0])
		return 1;
	char list[sizeof cfg->mrd_allow], *save = NULL;
	snprintf(list, sizeof list, "%s", cfg->mrd_allow);
	for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		if (!strcmp(t, peer))
			return 1;
	return 0;
}

static void *accept_main(void *arg)
{
	r5_server *s = arg;
	r5_mrd_listener *l = s->mrd;
	while (!atomic_load(&l->stop)) {
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		struct sockaddr_in addr;
		socklen_t len = sizeof addr;
		int fd = accept(l->fd, (struct sockaddr *)&addr, &len);
		if (fd < 0)
			continue;
		char peer[64] = "unknown";
		inet_ntop(AF_INET, &addr.sin_addr, peer, sizeof peer);
		if (!peer_allowed(&s->config, peer) || atomic_load(&s->draining)) {
			r5_warn("MRD connection from %s refused (%s)", peer, atomic_load(&s->draining) ? "draining" : "not in mrd_allow");
			r5_mrd_conn tmp = {.fd = fd};
			(void)r5_mrd_write_text(sock_write, &tmp, R5_MRD_TEXT, "ERR recon5t refuses this connection");
			(void)r5_mrd_write_id(sock_write, &tmp, R5_MRD_CLOSE);
			close(fd);
			continue;
		}
		r5_mrd_conn *m = calloc(1, sizeof *m);
		if (!m) {
			close(fd);
			continue;
		}
		m->server = s;
		m->fd = fd;
		snprintf(m->peer, sizeof m->peer, "%s", peer);
		pthread_mutex_init(&m->write_lock, NULL);
		pthread_cond_init(&m->done_cond, NULL);
		pthread_mutex_lock(&l->lock);
		l->connections++;
		pthread_mutex_unlock(&l->lock);
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, connection_main, m) != 0) {
			pthread_mutex_lock(&l->lock);
			l->connections--;
			pthread_mutex_unlock(&l->lock);
			close(fd);
			free(m);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

r5_status r5_mrd_start(r5_server *s)
{
	const r5_server_config *cfg = &s->config;
	if (!cfg->mrd_listen[0])
		return R5_OK;
	int loopback = r5_server_config_loopback(cfg->mrd_listen);
	if (!loopback && !(cfg->mrd_insecure && cfg->mrd_allow[0]))
		return r5_set_error(R5_EINVAL,
				    "mrd_listen = %s: MRD is plaintext (no MRD client speaks TLS); off loopback it needs "
				    "mrd_insecure = 1 and an mrd_allow list of peer addresses",
				    cfg->mrd_listen);
	if (!loopback)
		r5_warn("MRD listener on %s is plaintext, open to %s (mrd_insecure = 1)", cfg->mrd_listen, cfg->mrd_allow);
	char host[128];
	snprintf(host, sizeof host, "%s", cfg->mrd_listen);
	char *colon = strrchr(host, ':');
	*colon = '\0';
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
		return r5_set_error(R5_EINVAL, "mrd_listen = %s: not an IPv4 HOST:PORT", cfg->mrd_listen);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return r5_set_error(R5_EIO, "mrd_listen = %s: cannot bind (%s)", cfg->mrd_listen, strerror(errno));
	}
	freeaddrinfo(ai);
	struct sockaddr_in bound;
	socklen_t len = sizeof bound;
	getsockname(fd, (struct sockaddr *)&bound, &len);
	r5_mrd_listener *l = calloc(1, sizeof *l);
	if (!l) {
		close(fd);
		return r5_set_error(R5_ENOMEM, "MRD listener");
	}
	l->fd = fd;
	l->port = ntohs(bound.sin_port);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->changed, NULL);
	s->mrd = l;
	if (pthread_create(&l->thread, NULL, accept_main, s) != 0) {
		s->mrd = NULL;
		close(fd);
		free(l);
		return r5_set_error(R5_ENOMEM, "MRD listener thread");
	}
	r5_info("MRD listener on %s (port %d), role %s", cfg->mrd_listen, l->port, cfg->mrd_role);
	return R5_OK;
}

void r5_mrd_stop(r5_server *s)
{
	r5_mrd_listener *l = s->mrd;
	if (!l)
		return;
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	close(l->fd);
	pthread_mutex_lock(&l->lock);
	while (l->connections > 0)
		pthread_cond_wait(&l->changed, &l->lock);
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->changed);
	free(l);
	s->mrd = NULL;
}
