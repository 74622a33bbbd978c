/* "cpu-fault" (backend_fault.h): the CPU back end behind a fault injector. The table and every
 * slot wrapper are generated from the slot list (recon/core/backend_slots.h); C cannot name a
 * slot's arguments from its parameter list, so each slot has one line below saying how it is
 * forwarded (FWD: through the fault gate, then to the CPU slot with these arguments). A slot
 * added to the list without its line does not compile here.
 *
 * State: the CPU back end's state plus this context's retirement; the spec and the call count
 * are process-wide (one spec per test process or server), behind a lock and an atomic. */
#include "backend_fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "backend_cpu.h"

enum fault_kind { FAULT_NONE, FAULT_TRANSIENT, FAULT_OOM, FAULT_STICKY, FAULT_LOST };

static struct {
	pthread_mutex_t lock;
	long after;
	enum fault_kind kind;
	char slot[32];
	r5_status env_status; /* a bad R5_FAULT_INJECT: every state_create fails with it */
	char env_message[256];
} spec = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_long calls;
static atomic_int device_lost;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

struct fault_state {
	void *cpu; /* the CPU back end's state */
	int retired;
	char reason[256];
};

/* --- the spec --- */

static r5_status parse_item(const char *item, long *after, enum fault_kind *kind, char *slot, size_t slot_size)
{
	static const char *kinds[] = {"none", "transient", "oom", "sticky", "lost"};
	const char *eq = strchr(item, '=');
	if (!eq)
		return r5_set_error(R5_EINVAL, "fault spec: '%s' is not key=value", item);
	const char *value = eq + 1;
	size_t key_len = (size_t)(eq - item);
	if (key_len == 5 && strncmp(item, "after", 5) == 0) {
		char *end = NULL;
		*after = strtol(value, &end, 10);
		if (!*value || *end || *after < 1)
			return r5_set_error(R5_EINVAL, "fault spec: after=%s is not a count >= 1", value);
	} else if (key_len == 4 && strncmp(item, "kind", 4) == 0) {
		int k = 0;
		while (k < 5 && strcmp(value, kinds[k]) != 0)
			k++;
		if (k == 5)
			return r5_set_error(R5_EINVAL, "fault spec: kind=%s (transient, oom, sticky or lost)", value);
		*kind = (enum fault_kind)k;
	} else if (key_len == 4 && strncmp(item, "slot", 4) == 0) {
		if (!*value || strlen(value) >= slot_size)
			return r5_set_error(R5_EINVAL, "fault spec: slot=%s is not a slot name", value);
		snprintf(slot, slot_size, "%s", value);
	} else {
		return r5_set_error(R5_EINVAL, "fault spec: unknown key in '%s' (after, kind, slot)", item);
	}
	return R5_OK;
}

r5_status r5_fault_inject_configure(const char *text)
{
	long after = 0;
	enum fault_kind kind = FAULT_TRANSIENT;
	char slot[32] = "", copy[256];
	if (text && strlen(text) >= sizeof copy)
		return r5_set_error(R5_EINVAL, "fault spec: longer than %zu characters", sizeof copy - 1);
	snprintf(copy, sizeof copy, "%s", text ? text : "");
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
		R5_TRY(parse_item(item, &after, &kind, slot, sizeof slot));
	if (copy[0] && after == 0)
		return r5_set_error(R5_EINVAL, "fault spec: '%s' has no after=N", text);
	pthread_mutex_lock(&spec.lock);
	spec.after = after;
	spec.kind = after ? kind : FAULT_NONE;
	snprintf(spec.slot, sizeof spec.slot, "%s", slot);
	atomic_store(&calls, 0);
	atomic_store(&device_lost, 0);
	pthread_mutex_unlock(&spec.lock);
	return R5_OK;
}

long r5_fault_inject_calls(void)
{
	return atomic_load(&calls);
}

static void read_environment(void)
{
	const char *text = getenv("R5_FAULT_INJECT");
	if (!text || !*text)
		return;
	spec.env_status = r5_fault_inject_configure(text);
	if (spec.env_status != R5_OK)
		snprintf(spec.env_message, sizeof spec.env_message, "R5_FAULT_INJECT: %s", r5_last_error());
	else
		r5_info("cpu-fault: injecting '%s'", text);
}

/* --- the gate every forwarded call passes --- */

static r5_status retired(const struct fault_state *f)
{
	return r5_set_error(R5_EDEVICE_LOST, "cpu-fault: the context is retired after an earlier error: %s",
			    f->reason);
}

static r5_status inject(struct fault_state *f, enum fault_kind kind, const char *slot, long n)
{
	switch (kind) {
	case FAULT_TRANSIENT:
		return r5_set_error(R5_EGPU, "cpu-fault: injected transient failure of slot %s (call %ld)", slot, n);
	case FAULT_OOM:
		return r5_set_error(R5_ENOMEM, "cpu-fault: injected out of device memory in slot %s (call %ld)", slot, n);
	case FAULT_LOST:
		atomic_store(&device_lost, 1);
		/* fall through - this context is retired as after a sticky error */
	case FAULT_STICKY:
		f->retired = 1;
		snprintf(f->reason, sizeof f->reason,
			 "cpu-fault: injected sticky device error in slot %s (call %ld): an illegal memory access", slot,
			 n);
		return r5_set_error(R5_EDEVICE_LOST, "%s", f->reason);
	case FAULT_NONE: break;
	}
	return R5_OK;
}

static r5_status gate(struct fault_state *f, const char *slot)
{
	if (f->retired)
		return retired(f);
	if (atomic_load(&device_lost)) {
		f->retired = 1;
		snprintf(f->reason, sizeof f->reason, "cpu-fault: the device was lost (injected)");
		return retired(f);
	}
	pthread_mutex_lock(&spec.lock);
	long after = spec.after;
	enum fault_kind kind = spec.kind;
	int counted = kind != FAULT_NONE && (!spec.slot[0] || strcmp(spec.slot, slot) == 0);
	pthread_mutex_unlock(&spec.lock);
	if (!counted)
		return R5_OK;
	long n = atomic_fetch_add(&calls, 1) + 1;
	return n == after ? inject(f, kind, slot, n) : R5_OK;
}

/* --- the slots --- */

#define CPU r5_backend_cpu()
#define FWD(slot, ...)                              \
	{                                           \
		struct fault_state *f = state;      \
		R5_TRY(gate(f, #slot));             \
		return CPU->slot(f->cpu, __VA_ARGS__); \
	}
/* the hand-written ones (below) */
#define OWN ;

#define BODY_state_create OWN
#define BODY_state_destroy OWN
#define BODY_describe OWN
#define BODY_alloc FWD(alloc, ptr, bytes)
#define BODY_free OWN
#define BODY_upload FWD(upload, dst, host_src, bytes)
#define BODY_download FWD(download, host_dst, src, bytes)
#define BODY_copy FWD(copy, dst, src, bytes)
#define BODY_sync OWN
#define BODY_mem_info FWD(mem_info, free_bytes, total_bytes)
#define BODY_zfill FWD(zfill, n, x, value)
#define BODY_zscale FWD(zscale, n, x, alpha)
#define BODY_zaxpby FWD(zaxpby, n, alpha, x, beta, y)
#define BODY_zunary FWD(zunary, op, n, out, in)
#define BODY_zsoftthresh FWD(zsoftthresh, n, lambda, out, in)
#define BODY_zclamp FWD(zclamp, n, lo, hi, out, in)
#define BODY_zdot FWD(zdot, n, x, y, result)
#define BODY_znorm2sq FWD(znorm2sq, n, x, result)
#define BODY_zmul_md FWD(zmul_md, dims, out_str, out, in1_str, in1, in2_str, in2, flags)
#define BODY_zcopy_md FWD(zcopy_md, dims, out_str, out, in_str, in)
#define BODY_zcircshift FWD(zcircshift, dims, shifts, out, in)
#define BODY_zaxpby_md FWD(zaxpby_md, dims, alpha, x_str, x, beta, y_str, y)
#define BODY_zreduce_md FWD(zreduce_md, op, dims, out_str, out, in_str, in)
#define BODY_fft_plan_make FWD(fft_plan_make, plan, dims, flags)
#define BODY_fft_exec FWD(fft_exec, plan, out, in, inverse)
#define BODY_fft_plan_destroy OWN
#define BODY_zgemm FWD(zgemm, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
#define BODY_zheev_batched FWD(zheev_batched, batch, n, matrices, eigenvalues)
#define BODY_zheev_top_batched FWD(zheev_top_batched, batch, n, k, matrices, eigenvalues)
#define BODY_zwavelet_step FWD(zwavelet_step, kind, inverse, dim, dims, str, out, in)
#define BODY_nufft_spread FWD(nufft_spread, geom, points, samples, grid)
#define BODY_nufft_interp FWD(nufft_interp, geom, points, grid, samples)
#define BODY_nufft_deapod FWD(nufft_deapod, geom, corr, image, grid, to_grid)
#define BODY_nufft_toep_place FWD(nufft_toep_place, geom, coils, image, grid, place)

#define R5_FAULT_DEFINE(ret, slot, params) static ret fault_##slot params BODY_##slot
R5_BACKEND_SLOTS(R5_FAULT_DEFINE)
#undef R5_FAULT_DEFINE

static r5_status fault_state_create(void **state, int device)
{
	*state = NULL;
	pthread_once(&env_once, read_environment);
	if (spec.env_status != R5_OK)
		return r5_set_error(spec.env_status, "%s", spec.env_message);
	if (atomic_load(&device_lost))
		return r5_set_error(R5_EDEVICE_LOST, "cpu-fault: the device was lost (injected): no new context");
	struct fault_state *f = calloc(1, sizeof *f);
	if (!f)
		return r5_set_error(R5_ENOMEM, "cpu-fault back end state");
	r5_status st = CPU->state_create(&f->cpu, device);
	if (st != R5_OK) {
		free(f);
		return st;
	}
	*state = f;
	return R5_OK;
}

static void fault_state_destroy(void *state)
{
	struct fault_state *f = state;
	if (!f)
		return;
	CPU->state_destroy(f->cpu);
	free(f);
}

static r5_status fault_describe(void *state, char *text, size_t text_size)
{
	struct fault_state *f = state;
	char inner[200];
	R5_TRY(CPU->describe(f->cpu, inner, sizeof inner));
	snprintf(text, text_size, "cpu-fault (%s) over %s", f->retired ? "retired" : "fault injector", inner);
	return R5_OK;
}

/* Host memory is freed whatever the context's state (a retired CUDA context frees nothing, but
 * this one's memory is the process's). */
static void fault_free(void *state, void *ptr)
{
	struct fault_state *f = state;
	CPU->free(f->cpu, ptr);
}

static void fault_fft_plan_destroy(void *state, void *plan)
{
	struct fault_state *f = state;
	CPU->fft_plan_destroy(f->cpu, plan);
}

/* sync has no argument beyond the state (FWD needs one) */
static r5_status fault_sync(void *state)
{
	struct fault_state *f = state;
	R5_TRY(gate(f, "sync"));
	return CPU->sync(f->cpu);
}

#define R5_FAULT_SLOT(ret, slot, params) .slot = fault_##slot,
static const struct r5_backend fault_backend = {
	.name = "cpu-fault",
	.residency = R5_HOST,
	R5_BACKEND_SLOTS(R5_FAULT_SLOT)
};
#undef R5_FAULT_SLOT

const struct r5_backend *r5_backend_cpu_fault(void)
{
	return &fault_backend;
}
