/* libFuzzer harness: the Reconstruct stream as the server decodes it without a gRPC server:
 * ScanMessage bytes unpacked by protobuf-c (as r5_svc_unpack does), the ScanHeader's XML into
 * the scan builder (r5_scan_builder_create, as r5_ingest_header), each AcquisitionBatch's
 * acquisitions checked by r5_svc_acq_from_proto and sorted into k-space by
 * r5_scan_builder_add (as r5_ingest_batch), End finishing the scan (r5_scan_builder_finish).
 * Input: a sequence of frames, each a 2-byte little-endian length and that many bytes of one
 * ScanMessage. The k-space budget is small (64 MiB) so that a hostile matrix is refused, not
 * allocated, as with a server's memory_budget_mb. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_frames.h"
#include "recon/core/log.h"
#include "recon/io/scan.h"
#include "service/common/svc_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		r5_log_set_level(R5_LOG_ERROR);
		quiet = 1;
	}
	r5_scan_limits limits = {.max_kspace_bytes = 64L << 20, .max_header_bytes = 1L << 20};
	r5_scan_builder *b = NULL;
	size_t at = 0, n = 0;
	const uint8_t *frame = NULL;
	while (r5_fuzz_next_frame(data, size, &at, &frame, &n)) {
		Recon5t__V1__ScanMessage *m = recon5t__v1__scan_message__unpack(NULL, n, frame);
		if (!m)
			break;
		int stop = 0;
		if (m->kind_case == RECON5T__V1__SCAN_MESSAGE__KIND_HEADER && m->header && !b) {
			const char *xml = m->header->ismrmrd_xml ? m->header->ismrmrd_xml : "";
			if (r5_scan_builder_create(xml, strlen(xml), &limits, &b) != R5_OK)
				stop = 1;
		} else if (m->kind_case == RECON5T__V1__SCAN_MESSAGE__KIND_BATCH && m->batch && b) {
			for (size_t i = 0; i < m->batch->n_acquisitions && !stop; i++) {
				ISMRMRD_AcquisitionHeader head;
				const float complex *d = NULL;
				const float *traj = NULL;
				if (r5_svc_acq_from_proto(m->batch->acquisitions[i], &head, &d, &traj) != R5_OK ||
				    r5_scan_builder_add(b, &head, d, traj) != R5_OK)
					stop = 1;
			}
			if (!stop && r5_scan_builder_is_noncartesian(b)) {
				long n_read = 0, coils = 0;
				(void)r5_scan_builder_spoke_count(b, &n_read, &coils);
			}
		} else if (m->kind_case == RECON5T__V1__SCAN_MESSAGE__KIND_END && b) {
			r5_scan *scan = NULL;
			if (r5_scan_builder_finish(b, &scan) == R5_OK)
				r5_scan_free(scan);
			b = NULL; /* finish destroys the builder, whatever it returns */
			stop = 1;
		} else {
			stop = 1; /* a batch before the header, a second header: the server refuses them */
		}
		protobuf_c_message_free_unpacked(&m->base, NULL);
		if (stop)
			break;
	}
	r5_scan_builder_destroy(b);
	return 0;
}
