/* recon5t send: stream an ISMRMRD file to a recon5td server as a scanner console would — the
 * header, the acquisitions in batches (as fast as possible, or paced by their time stamps),
 * End — and save what comes back: float32 images as .f32 files with a .txt header beside them,
 * DICOM images as .dcm files, and the Completed timings in DIR/completed.txt. A progress bar
 * shows on a terminal. The exit status is 1 with the server's status message on failure.
 *
 * One thread drives one gRPC C core call through a completion queue: one SEND_MESSAGE and one
 * RECV_MESSAGE in flight at a time, so images are received while acquisitions still go out. */
#include <complex.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <ismrmrd/dataset.h>

#include "cli.h"
#include "cli_tls.h"
#include "recon/io/header.h"
#include "recon/io/ismrmrd_images.h"
#include "recon/io/scan.h"
#include "service/common/svc_proto.h"

#define MAX_PARAMS 64

typedef struct send_options {
	const char *scan, *server, *out, *pipeline, *job_id;
	Recon5t__V1__Parameter params[MAX_PARAMS];
	Recon5t__V1__Parameter *param_pointers[MAX_PARAMS];
	char *param_text[MAX_PARAMS];
	int n_params;
	int realtime, batch, research, dicom, quiet, no_truth, no_pacs;
	int mrd; /* --protocol mrd: cmd_send_mrd.c */
	Recon5t__V1__OutputKind outputs[4];
	int n_outputs;
	double deadline_s;
	r5_cli_security security; /* --ca --cert --key --token-file (cli_tls.h) */
} send_options;

typedef struct send_state {
	send_options *opt;
	ISMRMRD_Dataset dataset;
	char *xml;
	float *truth; /* the scan file's ground_truth image as float32 magnitude, or NULL */
	uint32_t truth_dims[R5_DIMS];
	size_t n_truth_dims, truth_voxels;
	uint32_t n_acq, next_acq;
	double tr_s, t0, t_last_acq, t_last_image;
	int header_sent, end_sent, close_sent;
	long bytes_sent;
	/* events */
	int n_images, accepted, completed, progress_events;
	char stage[32];
	double stage_fraction;
	FILE *completed_file;
} send_state;

enum { TAG_SEND = 1, TAG_RECV, TAG_STATUS, TAG_META };

static void usage(FILE *f)
{
	fprintf(f, "usage: recon5t send SCAN.h5 --server HOST:PORT --out DIR [--pipeline P] [--param k=v]...\n"
		   "       [--protocol grpc|mrd]  (mrd: MRD v1 / FIRE, e.g. recon5td's mrd_listen)\n"
		   "       [--pace realtime|fast] [--batch N] [--deadline S] [--job-id ID] [--priority console|research]\n"
		   "       [--output magnitude|phase|complex|gfactor]... [--format float32|dicom|nifti] [--quiet]\n"
		   "       [--no-truth] [--no-pacs] [--deidentify]\n"
		   "       [--ca CA.pem [--cert CERT.pem --key KEY.pem]] [--token-file F]\n"
		   "A phantom's ground_truth image in SCAN.h5 is sent along (unless --no-truth) and the server\n"
		   "returns nrmse/psnr/ssim against it; --no-pacs asks the server not to push this scan to its PACS;\n"
		   "--deidentify asks for DICOM without patient data (parameter deidentify=1, PS3.15 Annex E).\n");
}

static int parse_output(send_options *o, const char *v)
{
	static const char *names[] = {"magnitude", "phase", "complex", "gfactor"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i]) && o->n_outputs < 4) {
			o->outputs[o->n_outputs++] = (Recon5t__V1__OutputKind)i;
			return 1;
		}
	return 0;
}

static int parse_args(send_options *o, int argc, char **argv)
{
	memset(o, 0, sizeof *o);
	o->server = "127.0.0.1:50051";
	o->batch = 32;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--quiet")) {
			o->quiet = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-truth")) {
			o->no_truth = 1;
			takes = 0;
		} else if (!strcmp(a, "--no-pacs")) {
			o->no_pacs = 1;
			takes = 0;
		} else if (!strcmp(a, "--deidentify")) {
			if (o->n_params >= MAX_PARAMS)
				return fprintf(stderr, "recon5t send: too many parameters\n"), 0;
			static const char pair[] = "deidentify\0001"; /* key, NUL, value */
			char *text = malloc(sizeof pair);
			if (!text)
				return fprintf(stderr, "recon5t send: out of memory\n"), 0;
			memcpy(text, pair, sizeof pair);
			Recon5t__V1__Parameter *p = &o->params[o->n_params];
			recon5t__v1__parameter__init(p);
			p->key = text;
			p->value = text + sizeof "deidentify";
			o->param_text[o->n_params] = text;
			o->param_pointers[o->n_params++] = p;
			takes = 0;
		} else if (a[0] != '-') {
			if (o->scan)
				return fprintf(stderr, "recon5t send: more than one scan given ('%s')\n", a), 0;
			o->scan = a;
			takes = 0;
		} else if (!v) {
			return fprintf(stderr, "recon5t send: %s needs a value\n", a), 0;
		} else if (r5_cli_security_option(&o->security, a, v)) {
		} else if (!strcmp(a, "--server")) {
			o->server = v;
		} else if (!strcmp(a, "--out")) {
			o->out = v;
		} else if (!strcmp(a, "--pipeline")) {
			o->pipeline = v;
		} else if (!strcmp(a, "--protocol")) {
			if (strcmp(v, "grpc") && strcmp(v, "mrd"))
				return fprintf(stderr, "recon5t send: --protocol %s: expected grpc or mrd\n", v), 0;
			o->mrd = !strcmp(v, "mrd");
		} else if (!strcmp(a, "--job-id")) {
			o->job_id = v;
		} else if (!strcmp(a, "--batch")) {
			o->batch = atoi(v);
			if (o->batch < 1 || o->batch > 100000)
				return fprintf(stderr, "recon5t send: --batch %s: expected 1..100000\n", v), 0;
		} else if (!strcmp(a, "--deadline")) {
			o->deadline_s = atof(v);
			if (o->deadline_s <= 0)
				return fprintf(stderr, "recon5t send: --deadline %s: expected seconds > 0\n", v), 0;
		} else if (!strcmp(a, "--pace")) {
			if (strcmp(v, "realtime") && strcmp(v, "fast"))
				return fprintf(stderr, "recon5t send: --pace %s: expected realtime or fast\n", v), 0;
			o->realtime = !strcmp(v, "realtime");
		} else if (!strcmp(a, "--priority")) {
			if (strcmp(v, "console") && strcmp(v, "research"))
				return fprintf(stderr, "recon5t send: --priority %s: expected console or research\n", v), 0;
			o->research = !strcmp(v, "research");
		} else if (!strcmp(a, "--format")) {
			if (strcmp(v, "float32") && strcmp(v, "dicom") && strcmp(v, "nifti"))
				return fprintf(stderr, "recon5t send: --format %s: expected float32, dicom or nifti\n", v), 0;
			o->dicom = !strcmp(v, "dicom") ? 1 : !strcmp(v, "nifti") ? 2 : 0;
		} else if (!strcmp(a, "--output")) {
			if (!parse_output(o, v))
				return fprintf(stderr, "recon5t send: --output %s: expected magnitude, phase, complex or gfactor\n",
					       v), 0;
		} else if (!strcmp(a, "--param")) {
			char *eq = strchr(v, '=');
			if (!eq || eq == v || o->n_params >= MAX_PARAMS)
				return fprintf(stderr, "recon5t send: --param %s: expected key=value\n", v), 0;
			char *text = strdup(v);
			text[eq - v] = '\0';
			Recon5t__V1__Parameter *p = &o->params[o->n_params];
			recon5t__v1__parameter__init(p);
			p->key = text;
			p->value = text + (eq - v) + 1;
			o->param_text[o->n_params] = text;
			o->param_pointers[o->n_params++] = p;
		} else {
			return fprintf(stderr, "recon5t send: unknown option %s\n", a), 0;
		}
		i += takes;
	}
	if (!o->scan || !o->out)
		return usage(stderr), 0;
	return 1;
}

static grpc_byte_buffer *header_message(send_state *st)
{
	send_options *o = st->opt;
	Recon5t__V1__ScanHeader h = RECON5T__V1__SCAN_HEADER__INIT;
	Recon5t__V1__ScanMessage m = RECON5T__V1__SCAN_MESSAGE__INIT;
	Recon5t__V1__GroundTruth truth = RECON5T__V1__GROUND_TRUTH__INIT;
	if (st->truth) {
		truth.data.data = (uint8_t *)st->truth;
		truth.data.len = st->truth_voxels * sizeof(float);
		truth.n_dims = st->n_truth_dims;
		truth.dims = st->truth_dims;
		h.ground_truth = &truth;
	}
	h.skip_pacs = o->no_pacs;
	h.ismrmrd_xml = st->xml;
	h.pipeline = (char *)(o->pipeline ? o->pipeline : "");
	h.n_parameters = (size_t)o->n_params;
	h.parameters = o->param_pointers;
	h.n_outputs = (size_t)o->n_outputs;
	h.outputs = o->outputs;
	h.format = o->dicom == 2 ? RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI
		   : o->dicom ? RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM : RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32;
	h.client_job_id = (char *)(o->job_id ? o->job_id : "");
	h.priority = o->research ? RECON5T__V1__PRIORITY__PRIORITY_RESEARCH : RECON5T__V1__PRIORITY__PRIORITY_CONSOLE;
	m.kind_case = RECON5T__V1__SCAN_MESSAGE__KIND_HEADER;
	m.header = &h;
	return r5_svc_pack(&m.base);
}

/* The next batch of up to opt->batch acquisitions; *first_stamp: time stamp of its first. */
static grpc_byte_buffer *batch_message(send_state *st, uint32_t *first_stamp, int *failed)
{
	uint32_t n = st->n_acq - st->next_acq;
	if (n > (uint32_t)st->opt->batch)
		n = (uint32_t)st->opt->batch;
	ISMRMRD_Acquisition *acqs = calloc(n, sizeof *acqs);
	Recon5t__V1__Acquisition *msgs = calloc(n, sizeof *msgs);
	Recon5t__V1__Acquisition **pointers = calloc(n, sizeof *pointers);
	r5_svc_acq_scratch *scratch = calloc(n, sizeof *scratch);
	grpc_byte_buffer *buffer = NULL;
	*failed = 0;
	for (uint32_t i = 0; acqs && msgs && pointers && scratch && i < n; i++) {
		ismrmrd_init_acquisition(&acqs[i]);
		if (ismrmrd_read_acquisition(&st->dataset, st->next_acq + i, &acqs[i]) != ISMRMRD_NOERROR) {
			fprintf(stderr, "recon5t send: %s: cannot read acquisition %u\n", st->opt->scan, st->next_acq + i);
			*failed = 1;
			n = i;
			break;
		}
		recon5t__v1__acquisition__init(&msgs[i]);
		r5_svc_acq_to_proto(&acqs[i].head, acqs[i].data, acqs[i].traj, &scratch[i], &msgs[i]);
		pointers[i] = &msgs[i];
		st->bytes_sent += (long)msgs[i].data.len;
	}
	if (!*failed && acqs && msgs && pointers && scratch) {
		Recon5t__V1__AcquisitionBatch b = RECON5T__V1__ACQUISITION_BATCH__INIT;
		Recon5t__V1__ScanMessage m = RECON5T__V1__SCAN_MESSAGE__INIT;
		b.n_acquisitions = n;
		b.acquisitions = pointers;
		m.kind_case = RECON5T__V1__SCAN_MESSAGE__KIND_BATCH;
		m.batch = &b;
		buffer = r5_svc_pack(&m.base);
		*first_stamp = n ? acqs[0].head.acquisition_time_stamp : 0;
	} else if (!*failed) {
		fprintf(stderr, "recon5t send: out of memory\n");
		*failed = 1;
	}
	for (uint32_t i = 0; acqs && i < n; i++)
		ismrmrd_cleanup_acquisition(&acqs[i]);
	free(acqs);
	free(msgs);
	free(pointers);
	free(scratch);
	st->next_acq += n;
	return buffer;
}

static grpc_byte_buffer *end_message(void)
{
	Recon5t__V1__End end = RECON5T__V1__END__INIT;
	Recon5t__V1__ScanMessage m = RECON5T__V1__SCAN_MESSAGE__INIT;
	m.kind_case = RECON5T__V1__SCAN_MESSAGE__KIND_END;
	m.end = &end;
	return r5_svc_pack(&m.base);
}

/* ---------------------------------------------------------------- what comes back */

static const char *kind_file_name(Recon5t__V1__OutputKind kind)
{
	static const char *names[] = {"magnitude", "phase", "complex", "gfactor"};
	return (int)kind >= 0 && kind <= 3 ? names[kind] : "image";
}

static void write_floats3(FILE *f, const char *name, size_t n, const float *v)
{
	fprintf(f, "%s", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, " %.9g", v[i]);
	fprintf(f, "\n");
}

static int save_image(send_state *st, const Recon5t__V1__Image *img)
{
	char path[4096];
	int nifti = img->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI;
	const char *ext = img->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM ? "dcm" : nifti ? "nii.gz" : "f32";
	snprintf(path, sizeof path, "%s/%s_%04u.%s", st->opt->out, kind_file_name(img->kind), img->image_index, ext);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* patient data: 0600 */
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f && fd >= 0)
		close(fd);
	if (!f || fwrite(img->data.data, 1, img->data.len, f) != img->data.len) {
		fprintf(stderr, "recon5t send: cannot write %s (%s)\n", path, strerror(errno));
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	if (img->format == RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM)
		return 1;
	if (nifti) { /* the BIDS sidecar beside it */
		snprintf(path, sizeof path, "%s/%s_%04u.json", st->opt->out, kind_file_name(img->kind), img->image_index);
		f = fopen(path, "w");
		if (!f || fputs(img->sidecar_json ? img->sidecar_json : "{}\n", f) < 0) {
			fprintf(stderr, "recon5t send: cannot write %s\n", path);
			if (f)
				fclose(f);
			return 0;
		}
		return fclose(f) == 0;
	}
	snprintf(path, sizeof path, "%s/%s_%04u.txt", st->opt->out, kind_file_name(img->kind), img->image_index);
	f = fopen(path, "w");
	if (!f)
		return 0;
	fprintf(f, "type %s\n", img->kind == RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX ? "complex64" : "float32");
	fprintf(f, "matrix_size");
	for (size_t i = 0; i < img->n_matrix_size; i++)
		fprintf(f, " %u", img->matrix_size[i]);
	fprintf(f, "\n");
	write_floats3(f, "field_of_view_mm", img->n_field_of_view, img->field_of_view);
	write_floats3(f, "position", img->n_position, img->position);
	write_floats3(f, "read_dir", img->n_read_dir, img->read_dir);
	write_floats3(f, "phase_dir", img->n_phase_dir, img->phase_dir);
	write_floats3(f, "slice_dir", img->n_slice_dir, img->slice_dir);
	write_floats3(f, "patient_table_position", img->n_patient_table_position, img->patient_table_position);
	fprintf(f, "slice %u\ncontrast %u\nphase %u\nrepetition %u\nset %u\naverage %u\nmap %u\n", img->slice,
		img->contrast, img->phase, img->repetition, img->set, img->average, img->map);
	fprintf(f, "image_series_index %u\nimage_index %u\nseries_description %s\n", img->image_series_index,
		img->image_index, img->series_description);
	fclose(f);
	return 1;
}

static void print_completed(send_state *st, const Recon5t__V1__Completed *c)
{
	FILE *outs[2] = {stdout, st->completed_file};
	for (int k = 0; k < 2; k++) {
		FILE *f = outs[k];
		if (!f || (k == 0 && st->opt->quiet))
			continue;
		fprintf(f, "job %s: %u images, pipeline %s on %s (%s)\n", c->job_id, c->n_images, c->pipeline, c->backend,
			c->parameters);
		fprintf(f, "  %-24s %9.4f s\n", "ingest (server)", c->ingest_seconds);
		for (size_t i = 0; i < c->n_timings; i++)
			fprintf(f, "  %-24s %9.4f s\n", c->timings[i]->stage, c->timings[i]->seconds);
		for (size_t i = 0; i < c->n_quality; i++)
			fprintf(f, "  quality %-16s %9.5g\n", c->quality[i]->key, c->quality[i]->value);
		if (c->pacs_message && c->pacs_message[0])
			fprintf(f, "  pacs stored %u spooled %u failed %u: %s\n", c->pacs_stored, c->pacs_spooled,
				c->pacs_failed, c->pacs_message);
		fprintf(f, "  %-24s %9.4f s\n", "last acquisition→last image",
			st->t_last_image > st->t_last_acq ? st->t_last_image - st->t_last_acq : 0.0);
	}
}

static void progress_bar(send_state *st)
{
	if (st->opt->quiet || !isatty(fileno(stderr)))
		return;
	int width = 30, done = st->n_acq ? (int)((long)width * st->next_acq / st->n_acq) : width;
	char bar[64];
	for (int i = 0; i < width; i++)
		bar[i] = i < done ? '#' : '.';
	bar[width] = '\0';
	fprintf(stderr, "\r[%s] %u/%u acquisitions  %-16s %3.0f%%  %d images ", bar, st->next_acq, st->n_acq,
		st->stage[0] ? st->stage : "-", 100.0 * st->stage_fraction, st->n_images);
	fflush(stderr);
}

/* Returns 0 when the event could not be handled (bad bytes, cannot write). */
static int on_event(send_state *st, grpc_byte_buffer *buffer)
{
	ProtobufCMessage *message = NULL;
	if (r5_svc_unpack(buffer, &recon5t__v1__recon_event__descriptor, "event from the server", &message) != R5_OK) {
		fprintf(stderr, "recon5t send: %s\n", r5_last_error());
		return 0;
	}
	Recon5t__V1__ReconEvent *e = (Recon5t__V1__ReconEvent *)message;
	int ok = 1;
	switch (e->kind_case) {
	case RECON5T__V1__RECON_EVENT__KIND_ACCEPTED:
		st->accepted = 1;
		if (!st->opt->quiet)
			fprintf(stderr, "accepted as job %s (%u ahead)\n", e->accepted->job_id, e->accepted->queue_position);
		break;
	case RECON5T__V1__RECON_EVENT__KIND_PROGRESS:
		snprintf(st->stage, sizeof st->stage, "%s", e->progress->stage);
		st->stage_fraction = e->progress->fraction;
		st->progress_events++;
		break;
	case RECON5T__V1__RECON_EVENT__KIND_IMAGE:
		ok = save_image(st, e->image);
		st->n_images++;
		st->t_last_image = r5_svc_now();
		break;
	case RECON5T__V1__RECON_EVENT__KIND_COMPLETED:
		st->completed = 1;
		if (isatty(fileno(stderr)) && !st->opt->quiet)
			fprintf(stderr, "\n");
		print_completed(st, e->completed);
		break;
	default: break; /* Error: the status that follows says it */
	}
	progress_bar(st);
	protobuf_c_message_free_unpacked(message, NULL);
	return ok;
}

/* ---------------------------------------------------------------- the call */

typedef struct call_io {
	grpc_call *call;
	grpc_completion_queue *cq;
	int in_flight, send_busy, send_failed, got_status;
	grpc_byte_buffer *recv_buffer, *sending;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
} call_io;

static void start(call_io *io, grpc_op *ops, size_t n, intptr_t tag)
{
	grpc_call_error err = grpc_call_start_batch(io->call, ops, n, (void *)tag, NULL);
	if (err != GRPC_CALL_OK)
		fprintf(stderr, "recon5t send: grpc_call_start_batch failed (%d)\n", (int)err);
	else
		io->in_flight++;
}

static void send_buffer(call_io *io, grpc_byte_buffer *buffer)
{
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = buffer;
	io->sending = buffer;
	io->send_busy = 1;
	start(io, &op, 1, TAG_SEND);
}

static void arm_recv(call_io *io, int with_metadata)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof ops);
	size_t n = 0;
	if (with_metadata) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &io->initial;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &io->recv_buffer;
	start(io, ops, n, TAG_RECV);
}

static void open_call(call_io *io, grpc_channel *channel, double deadline_s, const r5_cli_security *security)
{
	gpr_timespec deadline = deadline_s > 0 ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
							       gpr_time_from_millis((int64_t)(deadline_s * 1000), GPR_TIMESPAN))
					       : gpr_inf_future(GPR_CLOCK_MONOTONIC);
	io->cq = grpc_completion_queue_create_for_next(NULL);
	io->call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, io->cq,
					    grpc_slice_from_static_string("/recon5t.v1.Recon/Reconstruct"), NULL, deadline, NULL);
	grpc_metadata_array_init(&io->initial);
	grpc_metadata_array_init(&io->trailing);
	grpc_op ops[1];
	grpc_metadata md[1];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = r5_cli_security_metadata(security, md);
	ops[0].data.send_initial_metadata.metadata = md;
	start(io, ops, 1, TAG_META);
	arm_recv(io, 1);
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &io->trailing;
	ops[0].data.recv_status_on_client.status = &io->status;
	ops[0].data.recv_status_on_client.status_details = &io->details;
	start(io, ops, 1, TAG_STATUS);
}

/* Prepares the next outgoing message and the time it is due (realtime pacing). */
static grpc_byte_buffer *next_message(send_state *st, double *due, int *failed)
{
	static uint32_t stamp0;
	*failed = 0;
	*due = 0;
	if (!st->header_sent) {
		st->header_sent = 1;
		return header_message(st);
	}
	if (st->next_acq < st->n_acq) {
		uint32_t index = st->next_acq, stamp = 0;
		grpc_byte_buffer *b = batch_message(st, &stamp, failed);
		if (index == 0)
			stamp0 = stamp;
		if (st->opt->realtime)
			*due = st->t0 + (stamp != stamp0 ? 0.0025 * (double)(stamp - stamp0) : st->tr_s * index);
		return b;
	}
	if (!st->end_sent) {
		st->end_sent = 1;
		return end_message();
	}
	return NULL;
}

static void close_send(call_io *io)
{
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	start(io, &op, 1, TAG_META);
}

/* Drives the call until the status came; returns 0 when something failed on this side. */
static int run_call(send_state *st, call_io *io)
{
	grpc_byte_buffer *pending = NULL;
	double due = 0;
	int ok = 1, closed = 0, failed = 0;
	while (!io->got_status || io->in_flight > 0) {
		if (!io->send_busy && !io->send_failed && !closed && !io->got_status) {
			if (!pending && !failed)
				pending = next_message(st, &due, &failed);
			if (failed && !pending) {
				grpc_call_cancel_with_status(io->call, GRPC_STATUS_CANCELLED, "client could not read the scan",
							     NULL);
				ok = 0;
				closed = 1;
			} else if (!pending) {
				close_send(io);
				closed = 1;
			} else if (r5_svc_now() >= due) {
				send_buffer(io, pending);
				pending = NULL;
			}
		}
		double wait = pending && !io->send_busy ? due - r5_svc_now() : 0.25;
		if (wait > 0.25)
			wait = 0.25;
		gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						  gpr_time_from_micros((int64_t)((wait > 0 ? wait : 0) * 1e6), GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(io->cq, until, NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		io->in_flight--;
		switch ((intptr_t)ev.tag) {
		case TAG_SEND:
			grpc_byte_buffer_destroy(io->sending);
			io->send_busy = 0;
			if (!ev.success)
				io->send_failed = 1;
			if (st->next_acq == st->n_acq && st->t_last_acq == 0)
				st->t_last_acq = r5_svc_now();
			progress_bar(st);
			break;
		case TAG_RECV:
			if (io->recv_buffer) {
				if (!on_event(st, io->recv_buffer))
					ok = 0;
				grpc_byte_buffer_destroy(io->recv_buffer);
				io->recv_buffer = NULL;
				arm_recv(io, 0);
			}
			break;
		case TAG_STATUS: io->got_status = 1; break;
		default: break;
		}
	}
	if (pending)
		grpc_byte_buffer_destroy(pending);
	return ok;
}

static int open_scan(send_state *st)
{
	/* read-only: many sends of one scan at once must not fight over HDF5's file lock */
	if (r5_ismrmrd_open_readonly(st->opt->scan, "/dataset", &st->dataset) != R5_OK) {
		fprintf(stderr, "recon5t send: %s\n", r5_last_error());
		return 0;
	}
	st->xml = ismrmrd_read_header(&st->dataset);
	if (!st->xml) {
		fprintf(stderr, "recon5t send: %s: no ISMRMRD XML header\n", st->opt->scan);
		return 0;
	}
	st->n_acq = ismrmrd_get_number_of_acquisitions(&st->dataset);
	st->tr_s = 0.005;
	r5_header h;
	memset(&h, 0, sizeof h);
	if (r5_header_parse(st->xml, strlen(st->xml), &h) == R5_OK && h.tr_ms > 0)
		st->tr_s = h.tr_ms * 1e-3;
	r5_header_clear(&h);
	return 1;
}

/* The scan file's "ground_truth" image (phantoms write one) as float32 magnitude; a file
 * without one sends none. Trailing size-1 dims are left out. */
static int read_truth(send_state *st)
{
	r5_array *truth = NULL;
	r5_status status = r5_ismrmrd_read_images(st->opt->scan, NULL, "ground_truth", &truth);
	if (status == R5_ENOTFOUND) {
		r5_clear_error();
		return 1;
	}
	if (status != R5_OK) {
		fprintf(stderr, "recon5t send: %s: ground truth: %s (use --no-truth to send without)\n", st->opt->scan,
			r5_last_error());
		return 0;
	}
	long n = r5_array_size(truth);
	st->truth = malloc((size_t)(n ? n : 1) * sizeof(float));
	if (!st->truth) {
		r5_array_free(truth);
		fprintf(stderr, "recon5t send: out of memory for the ground truth\n");
		return 0;
	}
	for (long i = 0; i < n; i++)
		st->truth[i] = cabsf(truth->data[i]);
	st->truth_voxels = (size_t)n;
	st->n_truth_dims = 1;
	for (int d = 0; d < R5_DIMS; d++) {
		st->truth_dims[d] = (uint32_t)truth->dims[d];
		if (truth->dims[d] > 1)
			st->n_truth_dims = (size_t)d + 1;
	}
	r5_array_free(truth);
	return 1;
}

static grpc_channel *make_channel(const char *server, const r5_cli_security *security)
{
	grpc_arg args[2];
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = -1;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = -1;
	grpc_channel_args channel_args = {2, args};
	grpc_channel_credentials *creds = r5_cli_channel_credentials(security, "send");
	if (!creds)
		return NULL;
	grpc_channel *channel = grpc_channel_create(server, creds, &channel_args);
	grpc_channel_credentials_release(creds);
	return channel;
}

int r5_cli_send(int argc, char **argv)
{
	send_options opt;
	send_state st;
	memset(&st, 0, sizeof st);
	if (!parse_args(&opt, argc, argv))
		return 2;
	if (!r5_cli_security_load(&opt.security, "send"))
		return 2;
	st.opt = &opt;
	if (mkdir(opt.out, 0700) != 0 && errno != EEXIST) { /* images with patient data: ours only */
		fprintf(stderr, "recon5t send: cannot create %s (%s)\n", opt.out, strerror(errno));
		return 1;
	}
	if (opt.mrd) { /* MRD v1: the pipeline and --param pairs as CONFIG_FILE and CONFIG_TEXT */
		char config_text[8192] = "";
		for (int i = 0; i < opt.n_params; i++) {
			size_t used = strlen(config_text);
			snprintf(config_text + used, sizeof config_text - used, "%s%s=%s", i ? "\n" : "",
				 opt.params[i].key, opt.params[i].value);
		}
		int result = r5_cli_send_mrd(opt.scan, opt.server, opt.out, opt.pipeline, config_text, opt.quiet);
		for (int i = 0; i < opt.n_params; i++)
			free(opt.param_text[i]);
		return result;
	}
	if (!open_scan(&st) || (!opt.no_truth && !read_truth(&st))) {
		free(st.truth);
		return 1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/completed.txt", opt.out);
	st.completed_file = fopen(path, "w");
	grpc_init();
	grpc_channel *channel = make_channel(opt.server, &opt.security);
	if (!channel) {
		grpc_shutdown();
		free(st.truth);
		return 2;
	}
	call_io io;
	memset(&io, 0, sizeof io);
	st.t0 = r5_svc_now();
	open_call(&io, channel, opt.deadline_s, &opt.security);
	int ok = run_call(&st, &io);
	int result = 0;
	if (isatty(fileno(stderr)) && !opt.quiet)
		fprintf(stderr, "\n");
	if (io.status != GRPC_STATUS_OK) {
		char *details = grpc_slice_to_c_string(io.details);
		fprintf(stderr, "recon5t send: %s: %s\n", r5_svc_grpc_code_name(io.status), details);
		gpr_free(details);
		result = 1;
	} else if (!ok || !st.completed || st.n_images == 0) {
		fprintf(stderr, "recon5t send: the server answered OK but %s\n",
			!ok ? "the results could not be saved" : "sent no images or no Completed");
		result = 1;
	} else if (!opt.quiet) {
		double seconds = st.t_last_acq - st.t0;
		fprintf(stderr, "sent %u acquisitions (%.1f MiB, %.1f MB/s); %d images in %s\n", st.n_acq,
			(double)st.bytes_sent / 1048576.0, seconds > 0 ? (double)st.bytes_sent / 1e6 / seconds : 0.0,
			st.n_images, opt.out);
	}
	grpc_slice_unref(io.details);
	grpc_metadata_array_destroy(&io.initial);
	grpc_metadata_array_destroy(&io.trailing);
	grpc_call_unref(io.call);
	grpc_completion_queue_shutdown(io.cq);
	while (grpc_completion_queue_next(io.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(io.cq);
	grpc_channel_destroy(channel);
	grpc_shutdown();
	if (st.completed_file)
		fclose(st.completed_file);
	free(st.xml);
	free(st.truth);
	ismrmrd_close_dataset(&st.dataset);
	for (int i = 0; i < opt.n_params; i++)
		free(opt.param_text[i]);
	return result;
}
