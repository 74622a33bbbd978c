/* The MRD v1 ("FIRE") listener: scanner integrations that speak the ISMRMRD streaming protocol
 * (Siemens FIRE/OpenRecon, Gadgetron clients, python-ismrmrd-server's client) reach the same
 * path as a gRPC Reconstruct stream. A connection becomes an r5_call without a gRPC call
 * (c->mrd set): its HEADER becomes the ScanHeader given to r5_ingest_header, each ACQUISITION
 * goes to r5_ingest_acquisition, CLOSE to r5_ingest_end; the job is queued, run by a worker and
 * its events (calls.c enqueue → r5_mrd_deliver) are turned into MRD messages: Image → IMAGE,
 * Error → TEXT "ERR ...", Progress/Accepted → TEXT "DBG ...", the final status → CLOSE.
 * Messages are decoded by service/common/mrd_wire.c (pure, fuzzed).
 * Admission is the gRPC streams' (admission.c): a connection is admitted when it is accepted
 * (max_streams, max_streams_per_peer with the peer named as gRPC names it, refused while
 * draining) and holds its slot until its call is destroyed; a refusal is TEXT "ERR ..." + CLOSE.
 * The ingest idle timeout is the reaper's too: the reader touches the call's idle clock as
 * bytes arrive, and when the reaper marks the call (idle, CancelJob, the drain's grace over) the
 * reader, which polls its socket every R5_MRD_POLL_MS, sees the mark and ends the connection
 * itself with ERR + CLOSE. The reaper never touches an MRD socket: the connection thread owns
 * it and may be closing it at that moment (a socket read timeout alone would not cover
 * CancelJob and the drain, and would be a second idle rule beside the reaper's).
 * QUERY (6) is answered as Gadgetron answers it: RESPONSE (7) with the correlation id, for the
 * keys its clients ask (gadgetron_ismrmrd_client -Q gadgetron::info); other keys are an error.
 * Threads: one accept thread (poll with a timeout, so that stop is seen), one thread per
 * connection that reads its socket (poll, R5_MRD_POLL_MS); workers write images on the
 * connection's socket under its write lock. Plaintext only: loopback, or mrd_insecure = 1 with
 * mrd_allow (addresses and CIDR prefixes, IPv4 and IPv6: service/common/addr_allow.h). */
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

#include <ismrmrd/version.h>

#include "auth.h"
#include "metrics.h"
#include "recon/core/log.h"
#include "server.h"
#include "service/common/addr_allow.h"
#include "service/common/mrd_wire.h"

/* how often a reader waiting for bytes looks whether the reaper ended its call (ms) */
#define R5_MRD_POLL_MS 200
/* how long a connection being closed reads and drops what the peer still sends (ms), so that
 * our ERR + CLOSE is not lost in a reset caused by unread input */
#define R5_MRD_LINGER_MS 1000

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
	r5_call *call; /* NULL until made; its idle_expired is what the reader polls */
	int fd;
	char peer[64];   /* numeric address, for logs and mrd_allow */
	int allowed;     /* in mrd_allow (or no list on loopback) */
	int quiet_end;   /* ended before any job was asked for: CLOSE without an ERR */
	pthread_mutex_t write_lock;
	pthread_cond_t done_cond;
	int done;        /* the final status was delivered */
	int error_sent;  /* a TEXT ERR went out */
	int broken;      /* a write failed: the peer is gone */
	int data_type;   /* MRD_FLOAT32 ... */
	long n_images;
} r5_mrd_conn;

/* ---------------------------------------------------------------- socket I/O */

/* Reads n bytes, waiting in poll so that a call the reaper ended is seen within R5_MRD_POLL_MS
 * even while the peer sends nothing; each chunk that arrives restarts the idle clock, so that a
 * large message on a slow link is not idle while its bytes flow. */
static r5_status sock_read(void *user, void *dst, size_t n, size_t *got)
{
	r5_mrd_conn *m = user;
	size_t done = 0;
	while (done < n) {
		if (m->call && atomic_load(&m->call->idle_expired))
			break;
		struct pollfd p = {.fd = m->fd, .events = POLLIN};
		int ready = poll(&p, 1, R5_MRD_POLL_MS);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready <= 0)
			continue;
		ssize_t r = recv(m->fd, (char *)dst + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
		if (m->call)
			r5_admission_touch(m->call);
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
		if (w <= 0) {
			m->broken = 1;
			/* the peer is gone (writes are under write_lock, and m->call is set before the
			 * job is queued and cleared only after its last write): stop the job at its next
			 * check, as a gRPC client that vanishes does, instead of computing for no one */
			if (m->call && !atomic_exchange(&m->call->cancelled, 1))
				r5_info("job %s: the MRD peer %s is gone (%s): cancelling the job",
					m->call->job_id[0] ? m->call->job_id : "-", m->peer, strerror(errno));
		} else
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
		if (code != GRPC_STATUS_OK && !m->error_sent && !m->quiet_end) {
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

/* ---------------------------------------------------------------- QUERY */

/* The answer to a Gadgetron QUERY key, as Gadgetron's QueryHandler gives it (its keys, its
 * formats: numbers as decimal text, gadgetron::info as "  -- Name : value" lines that the
 * Gadgetron test tools parse); 0 for a key recon5t does not answer. Memory is recon5t's memory
 * budget (what a job may use), not the machine's RAM. */
static int query_answer(r5_server *s, const char *key, char *out, size_t size)
{
	int gpus = r5_backend_find("cuda") ? r5_backend_devices("cuda") : 0;
	if (gpus < 0)
		gpus = 0;
	long budget_mb = s->memory_budget / (1024L * 1024L);
	if (!strcmp(key, "ismrmrd::version"))
		snprintf(out, size, "%d.%d.%d", ISMRMRD_VERSION_MAJOR, ISMRMRD_VERSION_MINOR, ISMRMRD_VERSION_PATCH);
	else if (!strcmp(key, "gadgetron::version") || !strcmp(key, "gadgetron::build"))
		snprintf(out, size, "recon5t %s", R5_VERSION);
	else if (!strcmp(key, "gadgetron::info"))
		snprintf(out, size,
			 "recon5t %s (MRD v1 listener, answering Gadgetron queries)\n"
			 "  -- Version            : recon5t %s\n"
			 "  -- Git SHA1           : none\n"
			 "  -- System Memory size : %ld MB\n"
			 "  -- Python Support     : NO\n"
			 "  -- Matlab Support     : NO\n"
			 "  -- CUDA Support       : %s\n"
			 "  * Number of CUDA capable devices: %d\n",
			 R5_VERSION, R5_VERSION, budget_mb, gpus > 0 ? "YES" : "NO", gpus);
	else if (!strcmp(key, "gadgetron::info::memory"))
		snprintf(out, size, "%ld", s->memory_budget);
	else if (!strcmp(key, "gadgetron::info::python") || !strcmp(key, "gadgetron::info::matlab"))
		snprintf(out, size, "0");
	else if (!strcmp(key, "gadgetron::info::cuda"))
		snprintf(out, size, "%d", gpus > 0);
	else if (!strcmp(key, "gadgetron::cuda::devices"))
		snprintf(out, size, "%d", gpus);
	else
		return 0;
	return 1;
}

static r5_status answer_query(r5_mrd_conn *m, const r5_mrd_message *msg)
{
	char answer[1024];
	if (!query_answer(m->server, msg->text, answer, sizeof answer))
		return r5_set_error(R5_ENOTSUP,
				    "MRD QUERY \"%.60s\" is not answered by recon5t (it answers ismrmrd::version, "
				    "gadgetron::version, gadgetron::build, gadgetron::info, gadgetron::info::memory, "
				    "gadgetron::info::python, gadgetron::info::matlab, gadgetron::info::cuda, "
				    "gadgetron::cuda::devices)",
				    msg->text);
	pthread_mutex_lock(&m->write_lock);
	r5_status status = r5_mrd_write_response(sock_write, m, msg->correlation_id, answer);
	pthread_mutex_unlock(&m->write_lock);
	return status == R5_OK ? R5_OK : r5_set_error(R5_EIO, "MRD RESPONSE to QUERY: the peer is gone");
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
	r5_metrics_mrd_started();
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_metadata);
	c->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	snprintf(c->peer, sizeof c->peer, "%s", m->peer);
	snprintf(c->peer_full, sizeof c->peer_full, "mrd:%s", m->peer);
	snprintf(c->identity, sizeof c->identity, "mrd:%s", m->peer);
	/* named as gRPC names its peers, so that max_streams_per_peer counts one host's MRD
	 * connections and gRPC streams together; the job id comes with admission */
	r5_addr_peer_name(m->peer, c->peer, sizeof c->peer);
	c->role = r5_role_parse(s->config.mrd_role, strlen(s->config.mrd_role));
	c->authorized = 1;
	return c;
}

/* The reaper marked the call (idle, CancelJob, or the drain's grace over, in which case it
 * sent the status itself): the error the peer gets, then the memory goes. */
static void end_by_reaper(r5_call *c, int got_header)
{
	r5_call_release_memory(c);
	if (r5_call_is_finished(c))
		return;
	r5_status status = R5_ETIMEDOUT;
	if (atomic_load(&c->admin_cancelled)) {
		status = R5_ECANCELLED;
		r5_set_error(status, "cancelled by admin %s after %ld acquisitions", c->cancelled_by, c->n_acquisitions);
	} else {
		double idle_s = c->server->config.ingest_idle_s;
		r5_set_error(status,
			     "no message for %.1f s after %ld acquisitions (server ingest_idle_s = %.1f); the connection was "
			     "ended",
			     idle_s, c->n_acquisitions, idle_s);
	}
	r5_call_fail(c, status, got_header ? "ingest" : "configuration");
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
		r5_admission_touch(c); /* idle from now until bytes arrive */
		r5_status status = r5_mrd_read(sock_read, m, &limits, &msg);
		r5_admission_busy(c); /* not idle while the message is processed */
		if (status != R5_OK && atomic_load(&c->idle_expired)) {
			end_by_reaper(c, got_header);
			return 0;
		}
		if (status == R5_ENOTFOUND) { /* the peer closed between messages */
			if (got_header)
				r5_info("job %s: MRD peer closed the connection before CLOSE", c->job_id);
			m->quiet_end = !got_header; /* a probe, or a client that only asked QUERY */
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
				status = answer_query(m, &msg);
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
				m->quiet_end = !got_header; /* CLOSE before any HEADER: nothing was asked */
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

/* Half-closes, then reads and drops what the peer still sends for up to R5_MRD_LINGER_MS (or
 * until it closes): a socket closed with unread input resets the connection, and the reset can
 * discard our ERR + CLOSE before the peer reads them (a refused client is usually still sending
 * its header and data). */
static void linger_close(int fd)
{
	shutdown(fd, SHUT_WR);
	char scratch[4096];
	double end = r5_svc_now() + R5_MRD_LINGER_MS / 1000.0;
	for (;;) {
		int left_ms = (int)((end - r5_svc_now()) * 1000.0);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left_ms <= 0 || poll(&p, 1, left_ms) <= 0 || recv(fd, scratch, sizeof scratch, 0) <= 0)
			break;
	}
	close(fd);
}

/* A peer not in mrd_allow: told why, and closed. (Before any call exists: it is not a stream,
 * and its address is not patient data.) */
static void refuse_peer(r5_mrd_conn *m)
{
	char text[160];
	snprintf(text, sizeof text, "ERR recon5t refuses this connection: peer %s is not in mrd_allow", m->peer);
	r5_warn("MRD connection from %s refused: not in mrd_allow", m->peer);
	(void)r5_mrd_write_text(sock_write, m, R5_MRD_TEXT, text);
	(void)r5_mrd_write_id(sock_write, m, R5_MRD_CLOSE);
}

static void serve_connection(r5_mrd_conn *m)
{
	r5_call *c = new_call(m->server, m);
	mrd_request request = {.pipeline = ""};
	if (!c)
		return;
	/* refused (draining, max_streams, max_streams_per_peer): the status, delivered as ERR */
	if (r5_admission_admit(c)) {
		m->call = c;
		int queued = serve_messages(m, c, &request);
		atomic_store(&c->ingesting, 0); /* the reaper leaves a queued or running job alone */
		if (!queued && !r5_call_is_finished(c)) { /* vanished mid-stream: nothing more to say */
			atomic_store(&c->cancelled, 1);
			r5_call_finish(c, GRPC_STATUS_CANCELLED, "the MRD peer closed the connection");
		}
	}
	pthread_mutex_lock(&m->write_lock);
	while (!m->done)
		pthread_cond_wait(&m->done_cond, &m->write_lock);
	(void)r5_mrd_write_id(sock_write, m, R5_MRD_CLOSE);
	pthread_mutex_unlock(&m->write_lock);
	r5_info("job %s: MRD connection from %s ends, %ld images sent", c->job_id[0] ? c->job_id : "-", m->peer,
		m->n_images);
	r5_call_release_memory(c);
	m->call = NULL;
	r5_call_unref(c);
	request_free(&request);
}

static void *connection_main(void *arg)
{
	r5_mrd_conn *m = arg;
	r5_server *s = m->server;
	if (m->allowed)
		serve_connection(m);
	else
		refuse_peer(m);
	linger_close(m->fd);
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

/* Any peer when there is no list (then the listener is on loopback: r5_mrd_start), else the
 * list's addresses and prefixes (checked when the configuration was read). */
static int peer_allowed(const r5_server_config *cfg, const char *peer)
{
	return !cfg->mrd_allow[0] || r5_addr_list_match(cfg->mrd_allow, peer);
}

static void *accept_main(void *arg)
{
	r5_server *s = arg;
	r5_mrd_listener *l = s->mrd;
	while (!atomic_load(&l->stop)) {
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		struct sockaddr_storage addr;
		socklen_t len = sizeof addr;
		int fd = accept(l->fd, (struct sockaddr *)&addr, &len);
		if (fd < 0)
			continue;
		char peer[INET6_ADDRSTRLEN] = "unknown";
		if (addr.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, peer, sizeof peer);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, peer, sizeof peer);
		/* refusals (mrd_allow here, admission in the connection's thread) are answered there:
		 * telling a peer why takes a linger that must not hold up accept */
		r5_mrd_conn *m = calloc(1, sizeof *m);
		if (!m) {
			close(fd);
			continue;
		}
		m->server = s;
		m->fd = fd;
		snprintf(m->peer, sizeof m->peer, "%s", peer);
		m->allowed = peer_allowed(&s->config, peer);
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
				    "mrd_insecure = 1 and an mrd_allow list of peer addresses or CIDR prefixes",
				    cfg->mrd_listen);
	if (!loopback)
		r5_warn("MRD listener on %s is plaintext, open to %s (mrd_insecure = 1)", cfg->mrd_listen, cfg->mrd_allow);
	/* HOST:PORT, [IPV6]:PORT; [::] also takes IPv4 peers (as ::ffff:a.b.c.d, matched against
	 * IPv4 entries of mrd_allow) */
	char host[128];
	snprintf(host, sizeof host, "%s", cfg->mrd_listen);
	char *colon = strrchr(host, ':');
	*colon = '\0';
	char *name = host;
	if (host[0] == '[' && colon > host && colon[-1] == ']') {
		colon[-1] = '\0';
		name = host + 1;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	if (getaddrinfo(name[0] ? name : NULL, colon + 1, &hints, &ai) != 0 || !ai)
		return r5_set_error(R5_EINVAL, "mrd_listen = %s: not a HOST:PORT or [IPV6]:PORT", cfg->mrd_listen);
	int fd = socket(ai->ai_family, SOCK_STREAM, 0), one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return r5_set_error(R5_EIO, "mrd_listen = %s: cannot bind (%s)", cfg->mrd_listen, strerror(errno));
	}
	freeaddrinfo(ai);
	struct sockaddr_storage bound;
	socklen_t len = sizeof bound;
	getsockname(fd, (struct sockaddr *)&bound, &len);
	int port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
					       : ntohs(((struct sockaddr_in *)&bound)->sin_port);
	r5_mrd_listener *l = calloc(1, sizeof *l);
	if (!l) {
		close(fd);
		return r5_set_error(R5_ENOMEM, "MRD listener");
	}
	l->fd = fd;
	l->port = port;
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
