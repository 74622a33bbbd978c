/* A growing text for tests that write their input files themselves (a .seq, a header): put
 * appends printf output. Include after cmocka.h (it asserts the allocation). */
#ifndef R5_TESTS_TEXT_FIXTURE_H
#define R5_TESTS_TEXT_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void put(char **text, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*text = realloc(*text, *len + (size_t)n + 1);
	assert_non_null(*text);
	va_start(ap, fmt);
	vsnprintf(*text + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t)n;
}

#endif
