/* libFuzzer harness: the ISMRMRD XML header reader (recon/io/header.c, libxml2 XPath). */
#include <stddef.h>
#include <stdint.h>

#include "recon/io/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	r5_header h;
	if (r5_header_parse((const char *)data, size, &h) == R5_OK) {
		r5_header copy;
		if (r5_header_copy(&copy, &h) == R5_OK)
			r5_header_clear(&copy);
		r5_header_clear(&h);
	}
	return 0;
}
