/* Capabilities (what this server can do) and grpc.health.v1 Check (SERVING, or NOT_SERVING
 * while draining). Both answer on the completion-queue thread: they only read settings. */
#include <stdio.h>
#include <string.h>

#include "server.h"

grpc_byte_buffer *r5_capabilities_reply(r5_server *s)
{
	Recon5t__V1__CapabilitiesReply reply = RECON5T__V1__CAPABILITIES_REPLY__INIT;
	Recon5t__V1__Limits limits = RECON5T__V1__LIMITS__INIT;
	static char *pipelines[] = {"auto", "cartesian", "sense", "grappa"};
	char *backends[2] = {"cpu", "cuda"};
	int gpus = r5_cuda_device_count();
	Recon5t__V1__Gpu gpu_list[16], *gpu_pointers[16];
	char descriptions[16][96];
	int n_gpus = gpus < 16 ? gpus : 16;
	for (int i = 0; i < n_gpus; i++) {
		recon5t__v1__gpu__init(&gpu_list[i]);
		gpu_list[i].index = i;
		snprintf(descriptions[i], sizeof descriptions[i], "CUDA device %d", i);
		gpu_list[i].description = descriptions[i];
		gpu_pointers[i] = &gpu_list[i];
	}
	Recon5t__V1__OutputKind outputs[] = {RECON5T__V1__OUTPUT_KIND__OUTPUT_MAGNITUDE,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_PHASE,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_COMPLEX,
					     RECON5T__V1__OUTPUT_KIND__OUTPUT_GFACTOR};
	Recon5t__V1__ImageFormat formats[] = {RECON5T__V1__IMAGE_FORMAT__FORMAT_FLOAT32,
					      RECON5T__V1__IMAGE_FORMAT__FORMAT_DICOM};
	reply.version = (char *)R5_VERSION;
	reply.n_backends = (r5_backend_cuda() && gpus > 0) ? 2 : 1;
	reply.backends = backends;
	reply.n_gpus = (size_t)n_gpus;
	reply.gpus = gpu_pointers;
	reply.n_pipelines = sizeof pipelines / sizeof pipelines[0];
	reply.pipelines = pipelines;
	limits.max_message_bytes = (uint64_t)s->config.max_message_mb * 1024u * 1024u;
	limits.max_streams = (uint32_t)s->config.max_streams;
	limits.max_queued_jobs = (uint32_t)s->config.max_queue;
	limits.memory_budget_bytes = (uint64_t)s->memory_budget;
	reply.limits = &limits;
	reply.workers = (uint32_t)s->n_workers;
	reply.n_outputs = 4;
	reply.outputs = outputs;
	reply.n_formats = r5_dicom_out_available() ? 2 : 1;
	reply.formats = formats;
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
	reply.status = atomic_load(&s->draining) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
						: GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	return r5_svc_pack(&reply.base);
}
