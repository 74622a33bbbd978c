/* recon5t send --protocol mrd: the scan to an MRD v1 (FIRE) server — recon5td's mrd_listen or
 * any other (python-ismrmrd-server, Gadgetron) — as a console would: CONFIG_FILE (the
 * pipeline, "default" when none), CONFIG_TEXT with the --param pairs, HEADER, every
 * ACQUISITION, CLOSE; then it saves what comes back until the server's CLOSE: images as
 * DIR/<kind>_NNNN.<f32|u16|s16|...> with a .txt header beside each (as the gRPC send writes
 * them), TEXT lines on stderr. Exit 1 on a TEXT "ERR", or when no image came. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ismrmrd/dataset.h>

#include "cli.h"
#include "recon/io/scan.h"
#include "service/common/mrd_wire.h"

static r5_status fd_write(void *user, const void *src, size_t n)
{
	int fd = *(int *)user;
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(fd, (const char *)src + done, n - done, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return r5_set_error(R5_EIO, "MRD server closed the connection while sending (%s)", strerror(errno));
		done += (size_t)w;
	}
	return R5_OK;
}

static r5_status fd_read(void *user, void *dst, size_t n, size_t *got)
{
	int fd = *(int *)user;
	size_t done = 0;
	while (done < n) {
		ssize_t r = recv(fd, (char *)dst + done, n - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return done == n ? R5_OK : R5_EIO;
}

static int connect_to(const char *server)
{
	char host[256];
	snprintf(host, sizeof host, "%s", server);
	char *colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	return fd;
}

static const char *image_kind(uint16_t image_type)
{
	switch (image_type) {
	case ISMRMRD_IMTYPE_PHASE: return "phase";
	case ISMRMRD_IMTYPE_REAL: return "real";
	case ISMRMRD_IMTYPE_IMAG: return "imag";
	case ISMRMRD_IMTYPE_COMPLEX: return "complex";
	default: return "magnitude";
	}
}

static const char *type_ext(uint16_t data_type)
{
	switch (data_type) {
	case ISMRMRD_USHORT: return "u16";
	case ISMRMRD_SHORT: return "s16";
	case ISMRMRD_UINT: return "u32";
	case ISMRMRD_INT: return "s32";
	case ISMRMRD_FLOAT: return "f32";
	case ISMRMRD_DOUBLE: return "f64";
	case ISMRMRD_CXFLOAT: return "c64";
	default: return "c128";
	}
}

static int save(const char *out, const r5_mrd_message *m, int n)
{
	const ISMRMRD_ImageHeader *h = &m->image;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s_s%u_%04d.%s", out, image_kind(h->image_type), h->image_series_index, n,
		 type_ext(h->data_type));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* patient data: 0600 */
	if (fd < 0 || write(fd, m->image_data, m->image_data_bytes) != (ssize_t)m->image_data_bytes) {
		fprintf(stderr, "recon5t send: cannot write %s (%s)\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	snprintf(path, sizeof path, "%s/%s_s%u_%04d.txt", out, image_kind(h->image_type), h->image_series_index, n);
	FILE *f = fopen(path, "w");
	if (!f)
		return 0;
	fprintf(f, "type %s\nmatrix_size %u %u %u\nchannels %u\n", type_ext(h->data_type), h->matrix_size[0],
		h->matrix_size[1], h->matrix_size[2], h->channels);
	fprintf(f, "field_of_view_mm %.9g %.9g %.9g\n", h->field_of_view[0], h->field_of_view[1], h->field_of_view[2]);
	fprintf(f, "position %.9g %.9g %.9g\n", h->position[0], h->position[1], h->position[2]);
	fprintf(f, "read_dir %.9g %.9g %.9g\n", h->read_dir[0], h->read_dir[1], h->read_dir[2]);
	fprintf(f, "phase_dir %.9g %.9g %.9g\n", h->phase_dir[0], h->phase_dir[1], h->phase_dir[2]);
	fprintf(f, "slice_dir %.9g %.9g %.9g\n", h->slice_dir[0], h->slice_dir[1], h->slice_dir[2]);
	fprintf(f, "slice %u\ncontrast %u\nrepetition %u\nimage_series_index %u\nimage_index %u\n", h->slice,
		h->contrast, h->repetition, h->image_series_index, h->image_index);
	fprintf(f, "attributes %s\n", m->text ? m->text : "");
	fclose(f);
	return 1;
}

static int send_scan(int fd, const char *scan, const char *pipeline, const char *config_text)
{
	ISMRMRD_Dataset d;
	if (r5_ismrmrd_open_readonly(scan, "/dataset", &d) != R5_OK) {
		fprintf(stderr, "recon5t send: %s\n", r5_last_error());
		return 0;
	}
	char *xml = ismrmrd_read_header(&d);
	int ok = xml != NULL;
	if (!xml)
		fprintf(stderr, "recon5t send: %s: no ISMRMRD XML header\n", scan);
	ok = ok && r5_mrd_write_config_file(fd_write, &fd, pipeline && *pipeline ? pipeline : "default") == R5_OK;
	if (ok && config_text[0])
		ok = r5_mrd_write_text(fd_write, &fd, R5_MRD_CONFIG_TEXT, config_text) == R5_OK;
	ok = ok && r5_mrd_write_text(fd_write, &fd, R5_MRD_HEADER, xml) == R5_OK;
	uint32_t n = ok ? ismrmrd_get_number_of_acquisitions(&d) : 0;
	ISMRMRD_Acquisition acq;
	for (uint32_t i = 0; ok && i < n; i++) {
		ismrmrd_init_acquisition(&acq);
		ok = ismrmrd_read_acquisition(&d, i, &acq) == ISMRMRD_NOERROR &&
		     r5_mrd_write_acquisition(fd_write, &fd, &acq.head, acq.traj, acq.data) == R5_OK;
		ismrmrd_cleanup_acquisition(&acq);
	}
	ok = ok && r5_mrd_write_id(fd_write, &fd, R5_MRD_CLOSE) == R5_OK;
	if (!ok && xml)
		fprintf(stderr, "recon5t send: sending %s failed: %s\n", scan, r5_last_error());
	free(xml);
	ismrmrd_close_dataset(&d);
	return ok;
}

int r5_cli_send_mrd(const char *scan, const char *server, const char *out, const char *pipeline,
		    const char *config_text, int quiet)
{
	int fd = connect_to(server);
	if (fd < 0) {
		fprintf(stderr, "recon5t send: cannot connect to the MRD server %s\n", server);
		return 1;
	}
	int sent = send_scan(fd, scan, pipeline, config_text);
	int n_images = 0, failed = !sent, closed = 0;
	for (;;) {
		r5_mrd_message m;
		r5_status status = r5_mrd_read(fd_read, &fd, NULL, &m);
		if (status != R5_OK) {
			if (status != R5_ENOTFOUND) {
				fprintf(stderr, "recon5t send: %s\n", r5_last_error());
				failed = 1;
			}
			break;
		}
		if (m.id == R5_MRD_CLOSE) {
			closed = 1;
			break;
		}
		if (m.id == R5_MRD_TEXT) {
			if (!quiet || !strncmp(m.text, "ERR", 3))
				fprintf(stderr, "server: %s\n", m.text);
			if (!strncmp(m.text, "ERR", 3))
				failed = 1;
		} else if (m.id == R5_MRD_IMAGE) {
			if (!save(out, &m, n_images))
				failed = 1;
			n_images++;
		}
		r5_mrd_message_clear(&m);
	}
	close(fd);
	if (!quiet)
		fprintf(stderr, "%d images in %s%s\n", n_images, out, closed ? "" : " (the server closed without CLOSE)");
	return failed || n_images == 0;
}
