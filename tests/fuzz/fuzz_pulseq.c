/* libFuzzer harness: the Pulseq .seq reader (recon/io/pulseq.c) and the trajectory computed from
 * what it read (recon/io/pulseq_kspace.c: gradients integrated, RF centres, ADC samples, the grid
 * classification). Input: the file's bytes. Sequences of more than 2^20 ADC samples are read but
 * not integrated (memory and time per input; the reader's own limits are what matter there). */
#include <stddef.h>
#include <stdint.h>

#include "recon/core/log.h"
#include "recon/io/pulseq.h"
#include "recon/io/pulseq_kspace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	r5_log_set_level(R5_LOG_ERROR);
	r5_seq *seq = NULL;
	if (r5_seq_parse((const char *)data, size, "fuzz.seq", &seq) != R5_OK)
		return 0;
	(void)r5_seq_duration(seq);
	long samples = 0;
	for (long b = 0; b < seq->n_blocks && samples <= (1L << 20); b++) {
		const r5_seq_adc *adc = seq->blocks[b].adc ? r5_seq_find_adc(seq, seq->blocks[b].adc) : NULL;
		samples += adc ? adc->n_samples : 0;
	}
	r5_seq_kspace ks;
	if (samples <= (1L << 20) && r5_seq_kspace_compute(seq, &ks) == R5_OK) {
		r5_seq_grid grid;
		r5_seq_kspace_grid(&ks, &grid);
		r5_seq_kspace_free(&ks);
	}
	r5_seq_free(seq);
	return 0;
}
