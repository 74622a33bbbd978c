/* DICOM output of recon5td: when the ScanHeader asks for FORMAT_DICOM, the image set goes
 * through recon/io's DICOM writer (MR Image Storage, one instance per 2D image, one series per
 * output kind) and every instance travels as one Image event holding its Part 10 bytes. When
 * the job goes to a PACS, the same encoding (same UIDs) is also written to files for it. The
 * request's PatientStudy fields override the ISMRMRD header's; none of them is ever logged.
 * De-identified (recon/io/dicom.h's table) when the ScanHeader has parameter deidentify = 1 or
 * the config's deidentify_research = 1 and the job is research priority.
 * A file that cannot be written (disk full) never costs the client an image: the events go on
 * and the files missing are counted for Completed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recon/io/dicom.h"
#include "server.h"

int r5_dicom_out_available(void) { return 1; }

static void request_from_proto(const Recon5t__V1__ScanHeader *h, r5_dicom_request *req)
{
	memset(req, 0, sizeof *req);
	const Recon5t__V1__PatientStudy *p = h->patient;
	if (!p)
		return;
	req->patient_name = p->patient_name;
	req->patient_id = p->patient_id;
	req->patient_birth_date = p->patient_birth_date;
	req->patient_sex = p->patient_sex;
	req->accession_number = p->accession_number;
	req->study_description = p->study_description;
	req->referring_physician = p->referring_physician;
	req->study_uid = p->study_instance_uid;
}

static int dicom_kind(Recon5t__V1__OutputKind kind, r5_dicom_kind *out)
{
	switch (kind) {
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE: *out = R5_DICOM_MAGNITUDE; return 1;
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE: *out = R5_DICOM_PHASE; return 1;
	case RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR: *out = R5_DICOM_GFACTOR; return 1;
	default: return 0;
	}
}

static void send_instance(r5_call *c, Recon5t__V1__OutputKind kind, long index, const r5_image_set *set,
			  unsigned char *bytes, size_t length)
{
	Recon5t__V1__Image img = RECON5T__V1__IMAGE__INIT;
	Recon5t__V1__ReconEvent event = RECON5T__V1__RECON_EVENT__INIT;
	uint32_t matrix[3];
	for (int i = 0; i < 3; i++)
		matrix[i] = (uint32_t)set->images->dims[i];
	img.format = RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM;
	img.kind = kind;
	img.data.data = bytes;
	img.data.len = length;
	img.n_matrix_size = 3;
	img.matrix_size = matrix;
	img.n_field_of_view = 3;
	img.field_of_view = (float *)set->fov_mm;
	img.image_series_index = (uint32_t)kind + 1;
	img.image_index = (uint32_t)index + 1;
	event.kind_case = RECON5T__V1__RECON_EVENT__KIND_IMAGE;
	event.image = &img;
	r5_call_send_event(c, &event);
}

/* Writes bytes to <kind>_IM_<index>.dcm in the files' directory: ".<name>.tmp" created 0600
 * (patient data) with O_EXCL and O_NOFOLLOW relative to the checked directory, written,
 * fsynced, renamed into place; on any failure nothing is left behind. The path goes to
 * files->paths. */
static r5_status write_instance(r5_dicom_files *files, r5_dicom_kind kind, long index, const unsigned char *bytes,
				size_t length)
{
	char name[96], tmp[112];
	snprintf(name, sizeof name, "%s_IM_%05ld.dcm", r5_dicom_kind_name(kind), index + 1);
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	int fd = openat(files->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return r5_set_error(R5_EIO, "outbox %s: cannot create %s (%s)", files->dir, name, strerror(errno));
	int error = 0;
	size_t done = 0;
	while (done < length && !error) {
		ssize_t n = write(fd, bytes + done, length - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			error = n < 0 ? errno : EIO;
		else
			done += (size_t)n;
	}
	if (!error && fsync(fd) != 0)
		error = errno;
	if (close(fd) != 0 && !error)
		error = errno;
	if (!error && renameat(files->dir_fd, tmp, files->dir_fd, name) != 0)
		error = errno;
	if (error) {
		unlinkat(files->dir_fd, tmp, 0);
		return r5_set_error(R5_EIO, "outbox %s: cannot write %s (%s)", files->dir, name, strerror(error));
	}
	char path[1400];
	snprintf(path, sizeof path, "%s/%s", files->dir, name);
	files->paths[files->n_paths] = strdup(path);
	if (!files->paths[files->n_paths]) {
		unlinkat(files->dir_fd, name, 0);
		return r5_set_error(R5_ENOMEM, "DICOM path");
	}
	files->n_paths++;
	return R5_OK;
}

void r5_dicom_out_free_paths(char **paths, long n)
{
	for (long i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
}

static long total_instances(const r5_dicom_writer *writer, const Recon5t__V1__OutputKind *kinds, size_t n_kinds)
{
	long total = 0;
	for (size_t k = 0; k < n_kinds; k++) {
		r5_dicom_kind kind;
		if (dicom_kind(kinds[k], &kind))
			total += r5_dicom_writer_count(writer, kind);
	}
	return total;
}

r5_status r5_dicom_out_run(r5_call *c, const r5_image_set *set, int send_events, r5_dicom_files *files,
			   uint32_t *n_images)
{
	const Recon5t__V1__ScanHeader *h = c->header_message->header;
	r5_dicom_request req;
	request_from_proto(h, &req);
	req.deidentify = c->deidentify || (c->server->config.deidentify_research &&
					   h->priority == RECON5T__V1__PRIORITY__PRIORITY_RESEARCH);
	r5_dicom_writer *writer = NULL;
	*n_images = 0;
	R5_TRY(r5_dicom_writer_create(set, &req, &writer));
	Recon5t__V1__OutputKind magnitude = RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE;
	const Recon5t__V1__OutputKind *kinds = h->n_outputs ? h->outputs : &magnitude;
	size_t n_kinds = h->n_outputs ? h->n_outputs : 1;
	/* writing: 0 after the first failure (the rest is counted, not tried), or from the start
	 * when the caller could not open a directory (dir_fd < 0, failure says why) */
	int writing = files && files->dir_fd >= 0;
	if (writing) {
		files->n_paths = files->n_unwritten = 0;
		files->paths = calloc((size_t)total_instances(writer, kinds, n_kinds) + 1, sizeof *files->paths);
		if (!files->paths) {
			snprintf(files->failure, sizeof files->failure, "outbox: out of memory for the file list");
			writing = 0;
		}
	}
	r5_status status = R5_OK;
	for (size_t k = 0; k < n_kinds && status == R5_OK; k++) {
		r5_dicom_kind kind;
		if (!dicom_kind(kinds[k], &kind))
			continue;
		long count = r5_dicom_writer_count(writer, kind);
		for (long i = 0; i < count && status == R5_OK; i++) {
			unsigned char *bytes = NULL;
			size_t length = 0;
			status = r5_dicom_writer_encode(writer, kind, i, &bytes, &length);
			if (status != R5_OK)
				break;
			if (writing && write_instance(files, kind, i, bytes, length) != R5_OK) {
				snprintf(files->failure, sizeof files->failure, "%s", r5_last_error());
				writing = 0;
			}
			if (files && !writing)
				files->n_unwritten++;
			if (send_events) {
				send_instance(c, kinds[k], i, set, bytes, length);
				(*n_images)++;
			}
			free(bytes);
		}
	}
	r5_dicom_writer_destroy(writer);
	if (files && files->dir_fd >= 0 && files->n_paths > 0)
		fsync(files->dir_fd); /* the names, for a recovery after a crash */
	return status;
}
