/* libFuzzer harness: the MRD v1 message decoder (service/common/mrd_wire.c). Input: a byte
 * stream as a peer would send it; messages are read until the stream ends or one fails, under
 * small limits so that a length field near a limit is cheap. */
#include <stddef.h>
#include <stdint.h>

#include "service/common/mrd_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const r5_mrd_limits limits = {.max_text_bytes = 1 << 16, .max_header_bytes = 1 << 16, .max_data_bytes = 1 << 20};
	r5_mrd_buffer in = {data, size, 0};
	for (int i = 0; i < 10000; i++) {
		r5_mrd_message m;
		if (r5_mrd_read(r5_mrd_buffer_read, &in, &limits, &m) != R5_OK)
			break;
		r5_mrd_message_clear(&m);
	}
	return 0;
}
