/* libFuzzer harness: the Pulseq .seq reader (recon/io/pulseq.c). Input: the file's bytes. */
#include <stddef.h>
#include <stdint.h>

#include "recon/core/log.h"
#include "recon/io/pulseq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	r5_log_set_level(R5_LOG_ERROR);
	r5_seq *seq = NULL;
	if (r5_seq_parse((const char *)data, size, "fuzz.seq", &seq) == R5_OK) {
		(void)r5_seq_duration(seq);
		r5_seq_free(seq);
	}
	return 0;
}
