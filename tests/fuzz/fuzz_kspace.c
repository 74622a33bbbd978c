/* libFuzzer harness: acquisitions into k-space (the scan builder, recon/io/scan.c) under a fixed
 * valid header, a 16x16 4-coil Shepp-Logan phantom's (regressions/header/cart.xml, made by
 * `recon5t phantom`). Input: a sequence of frames, each a 2-byte little-endian length and that
 * many bytes of one protobuf Acquisition, checked by r5_svc_acq_from_proto and added as the
 * server's ingest does; the scan is finished after the last. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_frames.h"
#include "recon/core/log.h"
#include "recon/io/scan.h"
#include "service/common/svc_proto.h"

#ifndef R5_FUZZ_KSPACE_HEADER
#define R5_FUZZ_KSPACE_HEADER "cart.xml"
#endif

static char *header_xml;
static size_t header_length;

static int load_header(void)
{
	if (header_xml)
		return 0;
	r5_log_set_level(R5_LOG_ERROR);
	const char *path = getenv("R5_FUZZ_KSPACE_HEADER");
	FILE *f = fopen(path && path[0] ? path : R5_FUZZ_KSPACE_HEADER, "rb");
	if (!f)
		return -1;
	char *buf = malloc(1 << 16);
	size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
	fclose(f);
	if (!buf || n == 0) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	header_xml = buf;
	header_length = n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (load_header() != 0) {
		fprintf(stderr, "fuzz_kspace: cannot read the header %s\n", R5_FUZZ_KSPACE_HEADER);
		abort(); /* a harness error, not a finding: the fixed header must be there */
	}
	r5_scan_limits limits = {.max_kspace_bytes = 64L << 20, .max_header_bytes = 1L << 20};
	r5_scan_builder *b = NULL;
	if (r5_scan_builder_create(header_xml, header_length, &limits, &b) != R5_OK)
		abort(); /* the phantom's header is valid */
	size_t at = 0, n = 0;
	const uint8_t *frame = NULL;
	while (r5_fuzz_next_frame(data, size, &at, &frame, &n)) {
		Recon5t__V1__Acquisition *m = recon5t__v1__acquisition__unpack(NULL, n, frame);
		if (!m)
			break;
		ISMRMRD_AcquisitionHeader head;
		const float complex *d = NULL;
		const float *traj = NULL;
		r5_status s = r5_svc_acq_from_proto(m, &head, &d, &traj);
		if (s == R5_OK)
			s = r5_scan_builder_add(b, &head, d, traj);
		protobuf_c_message_free_unpacked(&m->base, NULL);
		if (s != R5_OK)
			break;
	}
	r5_array *noise = NULL;
	if (r5_scan_builder_noise(b, &noise) == R5_OK)
		r5_array_free(noise);
	r5_scan *scan = NULL;
	if (r5_scan_builder_finish(b, &scan) == R5_OK) /* destroys b */
		r5_scan_free(scan);
	return 0;
}
