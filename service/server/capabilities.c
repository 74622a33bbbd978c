/* Capabilities (what this server can do) and grpc.health.v1 Check (SERVING, or NOT_SERVING
 * while draining or when no worker has a usable back end: jobs.c). Both answer on the
 * completion-queue thread: they only read settings and counters. */
#include <stdio.h>
#include <string.h>

#include "recon/backends/backends.h"
#include "server.h"

/* Pipelines this build's parameter parser accepts (it lists what recon/pipeline registers). */
static size_t built_pipelines(char **out, size_t max)
{
	static char *candidates[] = {"auto", "cartesian", "sense", "grappa", "cs", "grid",
				     "grasp", "realtime", "cs3d", "radial_dynamic"};
	size_t n = 0;
	for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && n < max; i++) {
		r5_recon_params p = r5_recon_defaults;
		if (r5_recon_params_set(&p, "pipeline", candidates[i]) == R5_OK)
			out[n++] = candidates[i];
	}
	r5_clear_error();
	return n;
}

/* One entry per CUDA device: the description of the first worker context on it. */
static size_t describe_gpus(r5_server *s, int gpus, Recon5t__V1__Gpu *list, Recon5t__V1__Gpu **pointers,
			    char (*text)[160])
{
	int n = gpus < 16 ? gpus : 16;
	int on_gpu = strcmp(s->worker_backend, "gpu") == 0;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < n; i++) {
		recon5t__v1__gpu__init(&list[i]);
		list[i].index = i;
		snprintf(text[i], sizeof text[i], "CUDA device %d (%s)", i, on_gpu ? "no worker" : "not used: backend = cpu");
		for (int w = 0; on_gpu && w < s->n_workers && w < 16; w++) {
			if (w % gpus != i)
				continue;
			if (list[i].workers == 0 && s->worker_describe[w][0])
				snprintf(text[i], sizeof text[i], "%s", s->worker_describe[w]);
			list[i].workers++;
		}
		list[i].description = text[i];
		pointers[i] = &list[i];
	}
	pthread_mutex_unlock(&s->lock);
	return (size_t)n;
}

grpc_byte_buffer *r5_capabilities_reply(r5_server *s)
{
	Recon5t__V1__CapabilitiesReply reply = RECON5T__V1__CAPABILITIES_REPLY__INIT;
	Recon5t__V1__Limits limits = RECON5T__V1__LIMITS__INIT;
	char *pipelines[16];
	char *backends[3] = {"cpu"};
	int gpus = r5_backend_devices("cuda");
	Recon5t__V1__Gpu gpu_list[16], *gpu_pointers[16];
	char descriptions[16][160];
	char *pacs[1] = {s->pacs_name};
	Recon5t__V1__OutputKind outputs[] = {RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR};
	Recon5t__V1__ImageFormat formats[3] = {RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32};
	size_t n_formats = 1;
	if (r5_dicom_out_available())
		formats[n_formats++] = RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM;
	formats[n_formats++] = RECON5T__V1__IMAGE_FORMAT__FORMAT_NIFTI;
	reply.version = (char *)R5_VERSION;
	reply.n_backends = 1;
	if (r5_backend_find("cuda") && gpus > 0)
		backends[reply.n_backends++] = "cuda";
	/* a test back end the workers run on (cpu-device, cpu-fault) is named too */
	if (strcmp(s->worker_backend, "cpu") && strcmp(s->worker_backend, "gpu"))
		backends[reply.n_backends++] = s->worker_backend;
	reply.backends = backends;
	reply.n_gpus = describe_gpus(s, gpus, gpu_list, gpu_pointers, descriptions);
	reply.gpus = gpu_pointers;
	reply.n_pipelines = built_pipelines(pipelines, 16);
	reply.pipelines = pipelines;
	limits.max_message_bytes = (uint64_t)s->config.max_message_mb * 1024u * 1024u;
	limits.max_streams = (uint32_t)s->config.max_streams;
	limits.max_queued_jobs = (uint32_t)s->config.max_queue;
	limits.memory_budget_bytes = (uint64_t)s->memory_budget;
	reply.limits = &limits;
	reply.workers = (uint32_t)s->n_workers;
	reply.n_outputs = 4;
	reply.outputs = outputs;
	reply.n_formats = n_formats;
	reply.formats = formats;
	pthread_mutex_lock(&s->lock);
	reply.memory_in_use_bytes = s->memory_in_use > 0 ? (uint64_t)s->memory_in_use : 0;
	reply.active_streams = (uint32_t)s->active_streams;
	pthread_mutex_unlock(&s->lock);
	if (s->pacs_enabled) {
		reply.n_pacs_destinations = 1;
		reply.pacs_destinations = pacs;
		reply.pacs_spooled = (uint32_t)r5_pacs_spool_count(s->pacs_spool);
	}
	return r5_svc_pack(&reply.base);
}

grpc_byte_buffer *r5_health_reply(r5_server *s, const char *service, grpc_status_code *code)
{
	Grpc__Health__V1__HealthCheckResponse reply = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	*code = GRPC_STATUS_OK;
	if (service && *service && strcmp(service, "recon5t.v1.Recon") != 0) {
		*code = GRPC_STATUS_NOT_FOUND;
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	int usable = s->usable_workers;
	pthread_mutex_unlock(&s->lock);
	reply.status = atomic_load(&s->draining) || usable == 0
			       ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
			       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	return r5_svc_pack(&reply.base);
}
