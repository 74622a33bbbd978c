/* libFuzzer harness: the BART .cfl/.hdr reader (recon/io/cfl.c). Input: one byte n, then n
 * bytes of .hdr text, the rest is the .cfl; both go to the harness's temporary folder. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fuzz_tmp.h"
#include "recon/core/array.h"
#include "recon/io/cfl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"f.hdr", "f.cfl"};
	if (size < 1 || r5_fuzz_tmp_init(names, 2) != 0)
		return 0;
	size_t n = data[0];
	if (n > size - 1)
		n = size - 1;
	if (r5_fuzz_write("f.hdr", data + 1, n) != 0 || r5_fuzz_write("f.cfl", data + 1 + n, size - 1 - n) != 0)
		return 0;
	char path[600];
	snprintf(path, sizeof path, "%s/f", r5_fuzz_dir);
	long dims[R5_DIMS];
	(void)r5_cfl_read_dims(path, dims);
	r5_array *a = NULL;
	if (r5_cfl_read(path, &a) == R5_OK)
		r5_array_free(a);
	return 0;
}
