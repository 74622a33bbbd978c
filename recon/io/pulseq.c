/* Pulseq .seq reader (recon/io/pulseq.h): one pass over the lines into growing tables, then the
 * tables sorted by id, every reference checked and the signature verified. Nothing is allocated
 * from a count in the file before the count is checked against the caps in pulseq.h. */
#include "pulseq.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../core/log.h"

typedef enum section {
	SEC_NONE, SEC_VERSION, SEC_DEFINITIONS, SEC_BLOCKS, SEC_RF, SEC_GRADIENTS, SEC_TRAP, SEC_ADC,
	SEC_DELAYS, SEC_EXTENSIONS, SEC_SHAPES, SEC_SIGNATURE, SEC_UNKNOWN
} section;

static const struct {
	const char *name;
	section sec;
} section_names[] = {
	{"[VERSION]", SEC_VERSION}, {"[DEFINITIONS]", SEC_DEFINITIONS}, {"[BLOCKS]", SEC_BLOCKS},
	{"[RF]", SEC_RF}, {"[GRADIENTS]", SEC_GRADIENTS}, {"[TRAP]", SEC_TRAP}, {"[ADC]", SEC_ADC},
	{"[DELAYS]", SEC_DELAYS}, {"[EXTENSIONS]", SEC_EXTENSIONS}, {"[SHAPES]", SEC_SHAPES},
	{"[SIGNATURE]", SEC_SIGNATURE},
};

typedef struct parser {
	const char *name;
	r5_seq *seq;
	long line;
	section sec;
	int have_version;
	/* the shape being read */
	r5_seq_shape *shape;
	long shape_declared; /* num_samples, -1 before its line */
	double *packed;
	long n_packed, cap_packed;
	r5_seq_ext_spec *spec; /* the extension table being read, NULL for the list */
	char hash[64];
	char hash_type[16];
	long hash_line;
} parser;

static r5_status perr(const parser *p, const char *fmt, const char *what)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, what);
	return r5_set_error(R5_EINVAL, "%s: line %ld: %s", p->name, p->line, msg);
}

/* Grows *items (element size) so that index n fits. */
static r5_status grow(void **items, long *cap, long n, size_t size)
{
	if (n < *cap)
		return R5_OK;
	long next = *cap ? *cap * 2 : 16;
	void *bigger = realloc(*items, (size_t)next * size);
	if (!bigger)
		return r5_set_error(R5_ENOMEM, "pulseq: out of memory for %ld table rows", next);
	*items = bigger;
	*cap = next;
	return R5_OK;
}

/* Splits s into up to max numbers; returns the count, -1 if a token is not a finite number or
 * there are more than max. */
static int numbers(const char *s, double *v, int max)
{
	int n = 0;
	while (*s) {
		while (*s && isspace((unsigned char)*s))
			s++;
		if (!*s)
			break;
		if (n == max)
			return -1;
		char *end = NULL;
		errno = 0;
		double x = strtod(s, &end);
		if (end == s || (*end && !isspace((unsigned char)*end)) || !isfinite(x))
			return -1;
		v[n++] = x;
		s = end;
	}
	return n;
}

static int is_id(double x) { return x >= 0 && x <= 1e12 && x == floor(x); }

/* Reads a row of exactly `want` numbers whose first `n_ids` are non-negative integers. */
static r5_status row(parser *p, const char *s, double *v, int want, int n_ids, const char *what)
{
	int n = numbers(s, v, want);
	if (n != want) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s row needs %d numbers", what, want);
		return perr(p, "%s", msg);
	}
	for (int i = 0; i < n_ids; i++)
		if (!is_id(v[i]) || (i == 0 && v[i] < 1))
			return perr(p, "%s row: ids must be positive integers (0 for none in a block)", what);
	return R5_OK;
}

static r5_status parse_version(parser *p, const char *s)
{
	char key[32];
	char value[64];
	if (sscanf(s, "%31s %63s", key, value) != 2)
		return perr(p, "%s: expected 'major N', 'minor N' or 'revision N'", "[VERSION]");
	if (!strcmp(key, "major"))
		p->seq->major = atoi(value);
	else if (!strcmp(key, "minor"))
		p->seq->minor = atoi(value);
	else if (!strcmp(key, "revision"))
		snprintf(p->seq->revision, sizeof p->seq->revision, "%.31s", value);
	else
		return perr(p, "[VERSION]: unknown key '%s'", key);
	p->have_version = 1;
	return R5_OK;
}

static char *dup_str(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static r5_status parse_definition(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	size_t klen = strcspn(s, " \t");
	const char *v = s + klen;
	while (*v && isspace((unsigned char)*v))
		v++;
	size_t vlen = strlen(v);
	while (vlen && isspace((unsigned char)v[vlen - 1]))
		vlen--;
	for (long i = 0; i < q->n_definitions; i++)
		if (strlen(q->definitions[i].key) == klen && !strncmp(q->definitions[i].key, s, klen)) {
			r5_warn("%s: line %ld: definition %s given again; the later value is kept", p->name, p->line,
				q->definitions[i].key);
			char *value = dup_str(v, vlen);
			if (!value)
				return r5_set_error(R5_ENOMEM, "pulseq: out of memory");
			free(q->definitions[i].value);
			q->definitions[i].value = value;
			return R5_OK;
		}
	R5_TRY(grow((void **)&q->definitions, &q->cap_definitions, q->n_definitions, sizeof *q->definitions));
	r5_seq_definition *d = &q->definitions[q->n_definitions];
	d->key = dup_str(s, klen);
	d->value = dup_str(v, vlen);
	if (!d->key || !d->value) {
		free(d->key);
		free(d->value);
		return r5_set_error(R5_ENOMEM, "pulseq: out of memory");
	}
	q->n_definitions++;
	return R5_OK;
}

static int v13(const parser *p) { return p->seq->minor == 3; }

static r5_status parse_block(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[8];
	int n = numbers(s, v, 8);
	if (n == 7 && v13(p)) /* 1.3 files without the extension column */
		v[n++] = 0;
	if (n != 8)
		return perr(p, "%s row needs 8 numbers: id duration rf gx gy gz adc ext", "[BLOCKS]");
	for (int i = 0; i < 8; i++)
		if (!is_id(v[i]) || (i == 0 && v[i] < 1))
			return perr(p, "%s row: id, duration and event ids must be non-negative integers", "[BLOCKS]");
	R5_TRY(grow((void **)&q->blocks, &q->cap_blocks, q->n_blocks, sizeof *q->blocks));
	r5_seq_block *b = &q->blocks[q->n_blocks++];
	*b = (r5_seq_block){.id = (long)v[0], .duration_raster = (long)v[1], .rf = (long)v[2], .gx = (long)v[3],
		.gy = (long)v[4], .gz = (long)v[5], .adc = (long)v[6], .ext = (long)v[7], .line = p->line};
	return R5_OK;
}

static r5_status parse_rf(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[8];
	if (v13(p)) { /* id amp mag phase delay freq phase */
		R5_TRY(row(p, s, v, 7, 1, "[RF]"));
		memmove(v + 5, v + 4, 3 * sizeof *v);
		v[4] = 0;
	} else {
		R5_TRY(row(p, s, v, 8, 1, "[RF]"));
	}
	if (!is_id(v[2]) || !is_id(v[3]) || !is_id(v[4]))
		return perr(p, "%s row: shape ids must be non-negative integers", "[RF]");
	if (v[5] < 0)
		return perr(p, "%s row: negative delay", "[RF]");
	R5_TRY(grow((void **)&q->rf, &q->cap_rf, q->n_rf, sizeof *q->rf));
	q->rf[q->n_rf++] = (r5_seq_rf){.id = (long)v[0], .amplitude_hz = v[1], .mag_shape = (long)v[2],
		.phase_shape = (long)v[3], .time_shape = (long)v[4], .delay_s = v[5] * 1e-6, .freq_hz = v[6],
		.phase_rad = v[7], .line = p->line};
	return R5_OK;
}

static r5_status parse_gradient(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[5];
	if (v13(p)) { /* id amp shape delay */
		R5_TRY(row(p, s, v, 4, 1, "[GRADIENTS]"));
		v[4] = v[3];
		v[3] = 0;
		if (!is_id(v[2]))
			return perr(p, "%s row: the shape id must be a non-negative integer", "[GRADIENTS]");
	} else {
		R5_TRY(row(p, s, v, 5, 1, "[GRADIENTS]"));
		if (!is_id(v[2]) || !is_id(v[3]))
			return perr(p, "%s row: shape ids must be non-negative integers", "[GRADIENTS]");
	}
	if (v[4] < 0)
		return perr(p, "%s row: negative delay", "[GRADIENTS]");
	R5_TRY(grow((void **)&q->grads, &q->cap_grads, q->n_grads, sizeof *q->grads));
	q->grads[q->n_grads++] = (r5_seq_grad){.id = (long)v[0], .kind = R5_SEQ_GRAD_SHAPED, .amplitude_hz_m = v[1],
		.amp_shape = (long)v[2], .time_shape = (long)v[3], .delay_s = v[4] * 1e-6, .line = p->line};
	return R5_OK;
}

static r5_status parse_trap(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[6];
	R5_TRY(row(p, s, v, 6, 1, "[TRAP]"));
	for (int i = 2; i < 6; i++)
		if (v[i] < 0 || v[i] > 1e9)
			return perr(p, "%s row: rise, flat, fall and delay must be non-negative (us)", "[TRAP]");
	R5_TRY(grow((void **)&q->grads, &q->cap_grads, q->n_grads, sizeof *q->grads));
	q->grads[q->n_grads++] = (r5_seq_grad){.id = (long)v[0], .kind = R5_SEQ_GRAD_TRAP, .amplitude_hz_m = v[1],
		.rise_s = v[2] * 1e-6, .flat_s = v[3] * 1e-6, .fall_s = v[4] * 1e-6, .delay_s = v[5] * 1e-6,
		.line = p->line};
	return R5_OK;
}

static r5_status parse_adc(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[6];
	R5_TRY(row(p, s, v, 6, 2, "[ADC]"));
	if (v[1] < 1 || v[1] > R5_SEQ_MAX_SHAPE_SAMPLES || v[2] <= 0 || v[3] < 0)
		return perr(p, "%s row: needs 1 to 2^24 samples, a positive dwell (ns), a non-negative delay (us)", "[ADC]");
	R5_TRY(grow((void **)&q->adc, &q->cap_adc, q->n_adc, sizeof *q->adc));
	q->adc[q->n_adc++] = (r5_seq_adc){.id = (long)v[0], .n_samples = (long)v[1], .dwell_s = v[2] * 1e-9,
		.delay_s = v[3] * 1e-6, .freq_hz = v[4], .phase_rad = v[5], .line = p->line};
	return R5_OK;
}

static r5_status parse_delay(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	double v[2];
	R5_TRY(row(p, s, v, 2, 1, "[DELAYS]"));
	if (v[1] < 0)
		return perr(p, "%s row: negative delay", "[DELAYS]");
	R5_TRY(grow((void **)&q->delays, &q->cap_delays, q->n_delays, sizeof *q->delays));
	q->delays[q->n_delays++] = (r5_seq_delay){.id = (long)v[0], .delay_s = v[1] * 1e-6, .line = p->line};
	return R5_OK;
}

static r5_status parse_extension(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	if (!strncmp(s, "extension", 9) && isspace((unsigned char)s[9])) {
		char name[64];
		long type = 0;
		if (sscanf(s + 9, "%63s %ld", name, &type) != 2 || type < 1)
			return perr(p, "%s: expected 'extension NAME ID'", "[EXTENSIONS]");
		if (r5_seq_find_ext_spec(q, type))
			return perr(p, "[EXTENSIONS]: extension id %s defined twice", s + 9);
		R5_TRY(grow((void **)&q->ext_specs, &q->cap_ext_specs, q->n_ext_specs, sizeof *q->ext_specs));
		r5_seq_ext_spec *e = &q->ext_specs[q->n_ext_specs];
		*e = (r5_seq_ext_spec){.name = dup_str(name, strlen(name)), .type = type, .line = p->line};
		if (!e->name)
			return r5_set_error(R5_ENOMEM, "pulseq: out of memory");
		q->n_ext_specs++;
		p->spec = e;
		return R5_OK;
	}
	if (p->spec) {
		char *end = NULL;
		long id = strtol(s, &end, 10);
		if (end == s || id < 1)
			return perr(p, "extension %s: a row starts with its positive id", p->spec->name);
		while (*end && isspace((unsigned char)*end))
			end++;
		r5_seq_ext_spec *e = p->spec;
		R5_TRY(grow((void **)&e->rows, &e->cap_rows, e->n_rows, sizeof *e->rows));
		e->rows[e->n_rows] = (r5_seq_ext_row){.id = id, .text = dup_str(end, strlen(end)), .line = p->line};
		if (!e->rows[e->n_rows].text)
			return r5_set_error(R5_ENOMEM, "pulseq: out of memory");
		e->n_rows++;
		return R5_OK;
	}
	double v[4];
	R5_TRY(row(p, s, v, 4, 4, "[EXTENSIONS]"));
	R5_TRY(grow((void **)&q->ext_list, &q->cap_ext_list, q->n_ext_list, sizeof *q->ext_list));
	q->ext_list[q->n_ext_list++] = (r5_seq_ext_list){.id = (long)v[0], .type = (long)v[1], .ref = (long)v[2],
		.next = (long)v[3], .line = p->line};
	return R5_OK;
}

/* Pulseq's decompression (see pulseq.h) of p->packed into the current shape. */
static r5_status finish_shape(parser *p)
{
	r5_seq_shape *sh = p->shape;
	if (!sh)
		return R5_OK;
	p->shape = NULL;
	long n = sh->n;
	const double *w = p->packed;
	long np = p->n_packed;
	if (np == 0)
		return r5_set_error(R5_EINVAL, "%s: line %ld: shape %ld has no values", p->name, sh->line, sh->id);
	if (np == n) {
		memcpy(sh->values, w, (size_t)n * sizeof *w);
		return R5_OK;
	}
	long out = 0, i = 0;
	while (i < np) {
		if (i + 1 < np && w[i] == w[i + 1]) {
			if (i + 2 >= np || !is_id(w[i + 2]) || w[i + 2] > (double)(n - out))
				return r5_set_error(R5_EINVAL,
					"%s: line %ld: shape %ld: bad run length after the repeated value %g (values %ld-%ld)",
					p->name, sh->line, sh->id, w[i], i + 1, i + 3);
			long reps = (long)w[i + 2] + 2;
			if (out + reps > n)
				break;
			for (long r = 0; r < reps; r++)
				sh->values[out++] = w[i];
			i += 3;
		} else {
			if (out >= n) {
				out++;
				break;
			}
			sh->values[out++] = w[i++];
		}
	}
	if (out != n || i < np)
		return r5_set_error(R5_EINVAL,
			"%s: line %ld: shape %ld decompresses to %s%ld samples, num_samples says %ld", p->name,
			sh->line, sh->id, out >= n ? "more than " : "", out >= n ? n : out, n);
	for (long k = 1; k < n; k++)
		sh->values[k] += sh->values[k - 1];
	return R5_OK;
}

static r5_status parse_shape_line(parser *p, const char *s)
{
	r5_seq *q = p->seq;
	if (!strncmp(s, "shape_id", 8)) {
		R5_TRY(finish_shape(p));
		double v[1];
		if (numbers(s + 8, v, 1) != 1 || !is_id(v[0]) || v[0] < 1)
			return perr(p, "%s: expected 'shape_id N' with a positive integer", "[SHAPES]");
		R5_TRY(grow((void **)&q->shapes, &q->cap_shapes, q->n_shapes, sizeof *q->shapes));
		p->shape = &q->shapes[q->n_shapes++];
		*p->shape = (r5_seq_shape){.id = (long)v[0], .line = p->line};
		p->shape_declared = -1;
		p->n_packed = 0;
		return R5_OK;
	}
	if (!p->shape)
		return perr(p, "%s: values before any shape_id", "[SHAPES]");
	if (!strncmp(s, "num_samples", 11)) {
		double v[1];
		if (p->shape_declared >= 0 || numbers(s + 11, v, 1) != 1 || !is_id(v[0]) || v[0] < 1 ||
			v[0] > R5_SEQ_MAX_SHAPE_SAMPLES)
			return perr(p, "%s: expected one 'num_samples N', 1 <= N <= 2^24", "[SHAPES]");
		p->shape_declared = (long)v[0];
		p->shape->n = p->shape_declared;
		p->shape->values = malloc((size_t)p->shape->n * sizeof(double));
		if (!p->shape->values)
			return r5_set_error(R5_ENOMEM, "pulseq: out of memory for shape %ld", p->shape->id);
		return R5_OK;
	}
	if (p->shape_declared < 0)
		return perr(p, "%s: values before num_samples", "[SHAPES]");
	double v[1];
	if (numbers(s, v, 1) != 1)
		return perr(p, "[SHAPES]: '%s' is not one number", s);
	/* compressed data is never longer than ~1.5x the shape; stop absurd lists early */
	if (p->n_packed >= 2 * p->shape_declared + 3)
		return r5_set_error(R5_EINVAL, "%s: line %ld: shape %ld has far more values than its %ld samples",
			p->name, p->line, p->shape->id, p->shape_declared);
	R5_TRY(grow((void **)&p->packed, &p->cap_packed, p->n_packed, sizeof *p->packed));
	p->packed[p->n_packed++] = v[0];
	return R5_OK;
}

static r5_status parse_signature(parser *p, const char *s)
{
	char key[16];
	char value[64];
	if (sscanf(s, "%15s %63s", key, value) != 2)
		return perr(p, "[SIGNATURE]: expected 'Type md5' or 'Hash HEX', got '%s'", s);
	if (!strcmp(key, "Type"))
		snprintf(p->hash_type, sizeof p->hash_type, "%.15s", value);
	else if (!strcmp(key, "Hash")) {
		snprintf(p->hash, sizeof p->hash, "%s", value);
		p->hash_line = p->line;
	} else
		return perr(p, "[SIGNATURE]: unknown key '%s'", key);
	return R5_OK;
}

static r5_status enter_section(parser *p, const char *s)
{
	R5_TRY(finish_shape(p));
	p->spec = NULL;
	p->sec = SEC_UNKNOWN;
	for (size_t i = 0; i < sizeof section_names / sizeof section_names[0]; i++)
		if (!strcmp(s, section_names[i].name))
			p->sec = section_names[i].sec;
	if (p->sec == SEC_UNKNOWN) {
		r5_warn("%s: line %ld: section %s is not part of Pulseq 1.4; skipped", p->name, p->line, s);
		return R5_OK;
	}
	if (p->sec != SEC_VERSION) {
		if (!p->have_version)
			return perr(p, "%s comes before [VERSION]", s);
		r5_seq *q = p->seq;
		if (q->major != 1 || (q->minor != 3 && q->minor != 4))
			return r5_set_error(R5_ENOTSUP, "%s: Pulseq version %d.%d.%s is not supported (1.3.x and 1.4.x are)",
				p->name, q->major, q->minor, q->revision[0] ? q->revision : "?");
		if (p->sec == SEC_DELAYS && q->minor != 3)
			return perr(p, "%s is a Pulseq 1.3 section; this file says 1.4", s);
	}
	return R5_OK;
}

static r5_status parse_line(parser *p, char *s)
{
	char *hash = strchr(s, '#');
	if (hash)
		*hash = 0;
	while (*s && isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	if (!n)
		return R5_OK;
	if (s[0] == '[')
		return enter_section(p, s);
	switch (p->sec) {
	case SEC_NONE: return perr(p, "'%s' outside any section", s);
	case SEC_VERSION: return parse_version(p, s);
	case SEC_DEFINITIONS: return parse_definition(p, s);
	case SEC_BLOCKS: return parse_block(p, s);
	case SEC_RF: return parse_rf(p, s);
	case SEC_GRADIENTS: return parse_gradient(p, s);
	case SEC_TRAP: return parse_trap(p, s);
	case SEC_ADC: return parse_adc(p, s);
	case SEC_DELAYS: return parse_delay(p, s);
	case SEC_EXTENSIONS: return parse_extension(p, s);
	case SEC_SHAPES: return parse_shape_line(p, s);
	case SEC_SIGNATURE: return parse_signature(p, s);
	case SEC_UNKNOWN: return R5_OK;
	}
	return R5_OK;
}

/* Sorting by id and the look-ups. */
#define R5_SEQ_BY_ID(type)                                                  \
	static int cmp_##type(const void *a, const void *b)                   \
	{                                                                       \
		long x = ((const type *)a)->id, y = ((const type *)b)->id;         \
		return (x > y) - (x < y);                                          \
	}                                                                       \
	static const type *find_##type(const type *items, long n, long id)     \
	{                                                                       \
		type key;                                                           \
		key.id = id;                                                        \
		return n ? bsearch(&key, items, (size_t)n, sizeof key, cmp_##type) : NULL; \
	}
R5_SEQ_BY_ID(r5_seq_rf)
R5_SEQ_BY_ID(r5_seq_grad)
R5_SEQ_BY_ID(r5_seq_adc)
R5_SEQ_BY_ID(r5_seq_delay)
R5_SEQ_BY_ID(r5_seq_shape)
R5_SEQ_BY_ID(r5_seq_ext_list)
R5_SEQ_BY_ID(r5_seq_ext_row)

const r5_seq_rf *r5_seq_find_rf(const r5_seq *s, long id) { return id > 0 ? find_r5_seq_rf(s->rf, s->n_rf, id) : NULL; }
const r5_seq_grad *r5_seq_find_grad(const r5_seq *s, long id)
{
	return id > 0 ? find_r5_seq_grad(s->grads, s->n_grads, id) : NULL;
}
const r5_seq_adc *r5_seq_find_adc(const r5_seq *s, long id) { return id > 0 ? find_r5_seq_adc(s->adc, s->n_adc, id) : NULL; }
const r5_seq_shape *r5_seq_find_shape(const r5_seq *s, long id)
{
	return id > 0 ? find_r5_seq_shape(s->shapes, s->n_shapes, id) : NULL;
}
const r5_seq_ext_list *r5_seq_find_ext_list(const r5_seq *s, long id)
{
	return id > 0 ? find_r5_seq_ext_list(s->ext_list, s->n_ext_list, id) : NULL;
}
const r5_seq_ext_spec *r5_seq_find_ext_spec(const r5_seq *s, long type)
{
	for (long i = 0; i < s->n_ext_specs; i++)
		if (s->ext_specs[i].type == type)
			return &s->ext_specs[i];
	return NULL;
}

/* Sorts a table and rejects a repeated id, naming both lines. */
#define SORT_UNIQUE(items, n, type, what)                                                          \
	do {                                                                                           \
		if ((n) > 1)                                                                               \
			qsort((items), (size_t)(n), sizeof *(items), cmp_##type);                              \
		for (long i_ = 1; i_ < (n); i_++)                                                          \
			if ((items)[i_].id == (items)[i_ - 1].id)                                              \
				return r5_set_error(R5_EINVAL, "%s: lines %ld and %ld: %s id %ld defined twice", name, \
					(items)[i_ - 1].line, (items)[i_].line, what, (items)[i_].id);                 \
	} while (0)

static r5_status sort_tables(r5_seq *s, const char *name)
{
	SORT_UNIQUE(s->rf, s->n_rf, r5_seq_rf, "RF event");
	SORT_UNIQUE(s->grads, s->n_grads, r5_seq_grad, "gradient event ([GRADIENTS] and [TRAP] share ids)");
	SORT_UNIQUE(s->adc, s->n_adc, r5_seq_adc, "ADC event");
	SORT_UNIQUE(s->delays, s->n_delays, r5_seq_delay, "delay event");
	SORT_UNIQUE(s->shapes, s->n_shapes, r5_seq_shape, "shape");
	SORT_UNIQUE(s->ext_list, s->n_ext_list, r5_seq_ext_list, "extension list row");
	for (long e = 0; e < s->n_ext_specs; e++)
		SORT_UNIQUE(s->ext_specs[e].rows, s->ext_specs[e].n_rows, r5_seq_ext_row, s->ext_specs[e].name);
	return R5_OK;
}

static r5_status check_shape(const r5_seq *s, const char *name, long line, const char *event, long id, long shape,
	const char *role, long want_n, long *n_out)
{
	if (!shape)
		return R5_OK;
	const r5_seq_shape *sh = r5_seq_find_shape(s, shape);
	if (!sh)
		return r5_set_error(R5_EINVAL, "%s: line %ld: %s %ld names %s shape %ld, which [SHAPES] does not define",
			name, line, event, id, role, shape);
	if (want_n > 0 && sh->n != want_n)
		return r5_set_error(R5_EINVAL, "%s: line %ld: %s %ld: %s shape %ld has %ld samples, the magnitude/amplitude %ld",
			name, line, event, id, role, shape, sh->n, want_n);
	if (n_out)
		*n_out = sh->n;
	return R5_OK;
}

/* Duration of the events of a 1.3 block: the longest of its events (ADC dead time included). */
static double events_end_s(const r5_seq *s, const r5_seq_block *b, double adc_dead_s)
{
	double end = 0;
	const r5_seq_rf *rf = r5_seq_find_rf(s, b->rf);
	if (rf) {
		const r5_seq_shape *mag = r5_seq_find_shape(s, rf->mag_shape);
		const r5_seq_shape *t = r5_seq_find_shape(s, rf->time_shape);
		double d = t ? t->values[t->n - 1] * s->rf_raster_s : (mag ? mag->n : 0) * s->rf_raster_s;
		end = fmax(end, rf->delay_s + d);
	}
	const long axes[3] = {b->gx, b->gy, b->gz};
	for (int a = 0; a < 3; a++) {
		const r5_seq_grad *g = r5_seq_find_grad(s, axes[a]);
		if (!g)
			continue;
		double d;
		if (g->kind == R5_SEQ_GRAD_TRAP)
			d = g->rise_s + g->flat_s + g->fall_s;
		else {
			const r5_seq_shape *amp = r5_seq_find_shape(s, g->amp_shape);
			const r5_seq_shape *t = r5_seq_find_shape(s, g->time_shape);
			d = t ? t->values[t->n - 1] * s->grad_raster_s : (amp ? amp->n : 0) * s->grad_raster_s;
		}
		end = fmax(end, g->delay_s + d);
	}
	const r5_seq_adc *adc = r5_seq_find_adc(s, b->adc);
	if (adc)
		end = fmax(end, adc->delay_s + adc->n_samples * adc->dwell_s + adc_dead_s);
	return end;
}

static r5_status check_references(r5_seq *s, const char *name)
{
	for (long i = 0; i < s->n_rf; i++) {
		const r5_seq_rf *rf = &s->rf[i];
		long n = 0;
		if (!rf->mag_shape)
			return r5_set_error(R5_EINVAL, "%s: line %ld: RF event %ld has no magnitude shape", name, rf->line, rf->id);
		R5_TRY(check_shape(s, name, rf->line, "RF event", rf->id, rf->mag_shape, "magnitude", 0, &n));
		R5_TRY(check_shape(s, name, rf->line, "RF event", rf->id, rf->phase_shape, "phase", n, NULL));
		R5_TRY(check_shape(s, name, rf->line, "RF event", rf->id, rf->time_shape, "time", n, NULL));
	}
	for (long i = 0; i < s->n_grads; i++) {
		const r5_seq_grad *g = &s->grads[i];
		if (g->kind != R5_SEQ_GRAD_SHAPED)
			continue;
		long n = 0;
		if (!g->amp_shape)
			return r5_set_error(R5_EINVAL, "%s: line %ld: gradient %ld has no amplitude shape", name, g->line, g->id);
		R5_TRY(check_shape(s, name, g->line, "gradient", g->id, g->amp_shape, "amplitude", 0, &n));
		R5_TRY(check_shape(s, name, g->line, "gradient", g->id, g->time_shape, "time", n, NULL));
		const r5_seq_shape *t = r5_seq_find_shape(s, g->time_shape);
		for (long k = 1; t && k < t->n; k++)
			if (!(t->values[k] >= t->values[k - 1]) || t->values[0] < 0)
				return r5_set_error(R5_EINVAL, "%s: line %ld: gradient %ld: time shape %ld is not non-decreasing from 0",
					name, g->line, g->id, t->id);
	}
	for (long i = 0; i < s->n_ext_list; i++) {
		const r5_seq_ext_list *e = &s->ext_list[i];
		const r5_seq_ext_spec *spec = r5_seq_find_ext_spec(s, e->type);
		if (!spec)
			return r5_set_error(R5_EINVAL, "%s: line %ld: extension row %ld names extension type %ld, which is not defined",
				name, e->line, e->id, e->type);
		if (!find_r5_seq_ext_row(spec->rows, spec->n_rows, e->ref))
			return r5_set_error(R5_EINVAL, "%s: line %ld: extension row %ld names %s row %ld, which is not defined",
				name, e->line, e->id, spec->name, e->ref);
		if (e->next && !r5_seq_find_ext_list(s, e->next))
			return r5_set_error(R5_EINVAL, "%s: line %ld: extension row %ld: next row %ld is not defined", name,
				e->line, e->id, e->next);
	}
	double dead = 0;
	r5_seq_definition_numbers(s, "AdcDeadTime", &dead, 1);
	for (long i = 0; i < s->n_blocks; i++) {
		r5_seq_block *b = &s->blocks[i];
		const struct {
			long id;
			const char *what;
			int ok;
		} refs[] = {
			{b->rf, "RF event", !b->rf || r5_seq_find_rf(s, b->rf)},
			{b->gx, "gradient (x)", !b->gx || r5_seq_find_grad(s, b->gx)},
			{b->gy, "gradient (y)", !b->gy || r5_seq_find_grad(s, b->gy)},
			{b->gz, "gradient (z)", !b->gz || r5_seq_find_grad(s, b->gz)},
			{b->adc, "ADC event", !b->adc || r5_seq_find_adc(s, b->adc)},
			{b->ext, "extension row", !b->ext || r5_seq_find_ext_list(s, b->ext)},
		};
		for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++)
			if (!refs[r].ok)
				return r5_set_error(R5_EINVAL, "%s: line %ld: block %ld names %s %ld, which is not defined", name,
					b->line, b->id, refs[r].what, refs[r].id);
		if (s->minor == 3) {
			const r5_seq_delay *d = b->duration_raster ? find_r5_seq_delay(s->delays, s->n_delays, b->duration_raster) : NULL;
			if (b->duration_raster && !d)
				return r5_set_error(R5_EINVAL, "%s: line %ld: block %ld names delay event %ld, which [DELAYS] does not define",
					name, b->line, b->id, b->duration_raster);
			b->duration_s = fmax(d ? d->delay_s : 0, events_end_s(s, b, dead));
		} else {
			b->duration_s = b->duration_raster * s->block_raster_s;
			double end = events_end_s(s, b, 0);
			if (end > b->duration_s * (1 + 1e-9) + 1e-12)
				return r5_set_error(R5_EINVAL, "%s: line %ld: block %ld lasts %.9g s but its events need %.9g s", name,
					b->line, b->id, b->duration_s, end);
		}
	}
	return R5_OK;
}

static r5_status set_rasters(r5_seq *s, const char *name)
{
	const struct {
		const char *key;
		double *value;
		double fallback;
	} rasters[] = {
		{"GradientRasterTime", &s->grad_raster_s, 10e-6},
		{"RadiofrequencyRasterTime", &s->rf_raster_s, 1e-6},
		{"AdcRasterTime", &s->adc_raster_s, 100e-9},
		{"BlockDurationRaster", &s->block_raster_s, 10e-6},
	};
	for (size_t i = 0; i < sizeof rasters / sizeof rasters[0]; i++) {
		*rasters[i].value = rasters[i].fallback;
		if (!r5_seq_definition_get(s, rasters[i].key))
			continue;
		double v = 0;
		if (r5_seq_definition_numbers(s, rasters[i].key, &v, 1) != 1 || !(v > 0 && v < 1))
			return r5_set_error(R5_EINVAL, "%s: [DEFINITIONS] %s must be one positive time in s (under 1 s)", name,
				rasters[i].key);
		*rasters[i].value = v;
	}
	return R5_OK;
}

r5_status r5_seq_md5(const char *text, size_t len, char hex[33], size_t *signed_len)
{
	static const char mark[] = "\n[SIGNATURE]";
	size_t n = len;
	for (size_t i = 0; i + sizeof mark - 1 <= len; i++)
		if (text[i] == '\n' && !memcmp(text + i, mark, sizeof mark - 1)) {
			n = i;
			break;
		}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestInit_ex(md, EVP_md5(), NULL) && EVP_DigestUpdate(md, text, n) &&
		EVP_DigestFinal_ex(md, digest, &dlen) && dlen == 16;
	EVP_MD_CTX_free(md);
	if (!ok)
		return r5_set_error(R5_EINTERNAL, "pulseq: OpenSSL md5 failed");
	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (signed_len)
		*signed_len = n;
	return R5_OK;
}

static r5_status verify_signature(parser *p, const char *text, size_t len)
{
	r5_seq *s = p->seq;
	R5_TRY(r5_seq_md5(text, len, s->md5_hex, NULL));
	if (!p->hash[0]) {
		r5_warn("%s: no md5 in [SIGNATURE]; the file is read unverified", p->name);
		s->signature = R5_SEQ_SIGNATURE_NONE;
		return R5_OK;
	}
	if (p->hash_type[0] && strcmp(p->hash_type, "md5"))
		return r5_set_error(R5_ENOTSUP, "%s: [SIGNATURE] Type %s is not supported (md5 is)", p->name, p->hash_type);
	char lower[64];
	size_t i = 0;
	for (; p->hash[i] && i < sizeof lower - 1; i++)
		lower[i] = (char)tolower((unsigned char)p->hash[i]);
	lower[i] = 0;
	if (strcmp(lower, s->md5_hex))
		return r5_set_error(R5_EINVAL, "%s: line %ld: signature mismatch: the file's md5 is %s, [SIGNATURE] says %s",
			p->name, p->hash_line, s->md5_hex, p->hash);
	s->signature = R5_SEQ_SIGNATURE_VERIFIED;
	return R5_OK;
}

static r5_status parse_all(parser *p, const char *text, size_t len)
{
	char line[R5_SEQ_MAX_LINE + 1];
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		size_t n = end - pos;
		p->line++;
		if (n > R5_SEQ_MAX_LINE)
			return r5_set_error(R5_EINVAL, "%s: line %ld is longer than %d characters", p->name, p->line, R5_SEQ_MAX_LINE);
		memcpy(line, text + pos, n);
		line[n] = 0;
		if (strlen(line) != n)
			return r5_set_error(R5_EINVAL, "%s: line %ld contains a NUL byte", p->name, p->line);
		R5_TRY(parse_line(p, line));
		pos = end + 1;
	}
	R5_TRY(finish_shape(p));
	if (!p->have_version)
		return r5_set_error(R5_EINVAL, "%s: no [VERSION] section", p->name);
	if (p->seq->major != 1 || (p->seq->minor != 3 && p->seq->minor != 4))
		return r5_set_error(R5_ENOTSUP, "%s: Pulseq version %d.%d.%s is not supported (1.3.x and 1.4.x are)", p->name,
			p->seq->major, p->seq->minor, p->seq->revision[0] ? p->seq->revision : "?");
	if (!p->seq->n_blocks)
		return r5_set_error(R5_EINVAL, "%s: no [BLOCKS]", p->name);
	R5_TRY(set_rasters(p->seq, p->name));
	R5_TRY(sort_tables(p->seq, p->name));
	R5_TRY(check_references(p->seq, p->name));
	return verify_signature(p, text, len);
}

r5_status r5_seq_parse(const char *text, size_t len, const char *name, r5_seq **out)
{
	*out = NULL;
	if (!name)
		name = "pulseq";
	if (len > (size_t)R5_SEQ_MAX_FILE_BYTES)
		return r5_set_error(R5_ERANGE, "%s: %zu bytes is over the %ld-byte limit", name, len, R5_SEQ_MAX_FILE_BYTES);
	r5_seq *seq = calloc(1, sizeof *seq);
	if (!seq)
		return r5_set_error(R5_ENOMEM, "pulseq: out of memory");
	parser p = {.name = name, .seq = seq, .shape_declared = -1};
	r5_status st = parse_all(&p, text, len);
	free(p.packed);
	if (st != R5_OK) {
		r5_seq_free(seq);
		return st;
	}
	*out = seq;
	return R5_OK;
}

r5_status r5_seq_read(const char *path, r5_seq **out)
{
	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return r5_set_error(R5_EIO, "%s: cannot open: %s", path, strerror(errno));
	char *text = NULL;
	size_t len = 0, cap = 0;
	r5_status st = R5_OK;
	for (;;) {
		if (len == cap) {
			if (cap >= (size_t)R5_SEQ_MAX_FILE_BYTES) {
				st = r5_set_error(R5_ERANGE, "%s: over the %ld-byte limit", path, R5_SEQ_MAX_FILE_BYTES);
				break;
			}
			size_t next = cap ? cap * 2 : 1 << 16;
			char *bigger = realloc(text, next);
			if (!bigger) {
				st = r5_set_error(R5_ENOMEM, "%s: out of memory", path);
				break;
			}
			text = bigger;
			cap = next;
		}
		size_t got = fread(text + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				st = r5_set_error(R5_EIO, "%s: read error", path);
			break;
		}
	}
	fclose(f);
	if (st == R5_OK)
		st = r5_seq_parse(text, len, path, out);
	free(text);
	return st;
}

void r5_seq_free(r5_seq *s)
{
	if (!s)
		return;
	for (long i = 0; i < s->n_definitions; i++) {
		free(s->definitions[i].key);
		free(s->definitions[i].value);
	}
	free(s->definitions);
	for (long i = 0; i < s->n_shapes; i++)
		free(s->shapes[i].values);
	free(s->shapes);
	for (long e = 0; e < s->n_ext_specs; e++) {
		for (long r = 0; r < s->ext_specs[e].n_rows; r++)
			free(s->ext_specs[e].rows[r].text);
		free(s->ext_specs[e].rows);
		free(s->ext_specs[e].name);
	}
	free(s->ext_specs);
	free(s->ext_list);
	free(s->blocks);
	free(s->rf);
	free(s->grads);
	free(s->adc);
	free(s->delays);
	free(s);
}

const char *r5_seq_definition_get(const r5_seq *s, const char *key)
{
	for (long i = 0; i < s->n_definitions; i++)
		if (!strcmp(s->definitions[i].key, key))
			return s->definitions[i].value;
	return NULL;
}

int r5_seq_definition_numbers(const r5_seq *s, const char *key, double *values, int max)
{
	const char *v = r5_seq_definition_get(s, key);
	if (!v)
		return 0;
	int n = numbers(v, values, max);
	return n < 0 ? 0 : n;
}

double r5_seq_duration(const r5_seq *s)
{
	double t = 0;
	for (long i = 0; i < s->n_blocks; i++)
		t += s->blocks[i].duration_s;
	return t;
}
