/* libFuzzer harness: recon5td's configuration reader (service/server/config.c): the input is a
 * config file (key = value lines) loaded over the defaults, then the cross-key check. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_tmp.h"
#include "service/server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"recon5td.conf"};
	if (r5_fuzz_tmp_init(names, 1) != 0 || r5_fuzz_write("recon5td.conf", data, size) != 0)
		return 0;
	char path[600];
	snprintf(path, sizeof path, "%s/recon5td.conf", r5_fuzz_dir);
	r5_server_config c = r5_server_config_defaults;
	if (r5_server_config_load_file(&c, path) == R5_OK)
		(void)r5_server_config_check(&c);
	return 0;
}
