/* recon5t health --server HOST:PORT [--timeout S] [--service NAME] [--ca F [--cert F --key F]]
 *                [--token-file F]
 * One grpc.health.v1.Health/Check call: prints SERVING / NOT_SERVING and exits 0 only when the
 * server is serving (container HEALTHCHECK, orchestrator probes, scripts waiting for start-up).
 * The plaintext health port (health_listen) needs no credentials; the main port, with TLS or a
 * tokens file, takes them as `recon5t send` does (cli_tls.h: a monitor role suffices). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "cli.h"
#include "cli_tls.h"
#include "cli_util.h"
#include "service/common/svc_proto.h"

static int check(const char *server, double timeout_s, const char *service, const r5_cli_security *security)
{
	grpc_channel_credentials *creds = r5_cli_channel_credentials(security, "health");
	if (!creds)
		return 2;
	grpc_channel *channel = grpc_channel_create(server, creds, NULL);
	grpc_channel_credentials_release(creds);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis((int64_t)(timeout_s * 1000), GPR_TIMESPAN));
	grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						   grpc_slice_from_static_string("/grpc.health.v1.Health/Check"), NULL,
						   deadline, NULL);
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	req.service = (char *)service;
	grpc_byte_buffer *request = r5_svc_pack(&req.base), *response = NULL;
	grpc_metadata_array initial, trailing;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details;
	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	grpc_metadata md[1];
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = r5_cli_security_metadata(security, md);
	ops[0].data.send_initial_metadata.metadata = md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = request;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &response;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	int rc = 1;
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) == GRPC_CALL_OK) {
		grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		ProtobufCMessage *msg = NULL;
		if (status != GRPC_STATUS_OK) {
			char *text = grpc_slice_to_c_string(details);
			fprintf(stderr, "recon5t health: %s: %s %s\n", server, r5_svc_grpc_code_name(status), text);
			gpr_free(text);
		} else if (response &&
			   r5_svc_unpack(response, &grpc__health__v1__health_check_response__descriptor, "health reply",
					 &msg) == R5_OK) {
			Grpc__Health__V1__HealthCheckResponse *reply = (Grpc__Health__V1__HealthCheckResponse *)msg;
			const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
				&grpc__health__v1__health_check_response__serving_status__descriptor, (int)reply->status);
			printf("%s\n", v ? v->name : "UNKNOWN");
			rc = reply->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
			protobuf_c_message_free_unpacked(msg, NULL);
		}
		grpc_slice_unref(details);
	}
	grpc_byte_buffer_destroy(request);
	if (response)
		grpc_byte_buffer_destroy(response);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_call_unref(call);
	grpc_channel_destroy(channel);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

int r5_cli_health(int argc, char **argv)
{
	const char *server = "127.0.0.1:50051", *service = "";
	double timeout_s = 3;
	r5_cli_security security;
	memset(&security, 0, sizeof security);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: recon5t health [--server HOST:PORT] [--timeout S] [--service NAME]\n"
			       "                      [--ca CA.pem [--cert CERT.pem --key KEY.pem]] [--token-file F]\n");
			return 0;
		}
		if (i + 1 >= argc)
			return r5_cli_fail(2, "health: %s needs a value", argv[i]);
		if (!strcmp(argv[i], "--server"))
			server = argv[++i];
		else if (!strcmp(argv[i], "--timeout"))
			timeout_s = atof(argv[++i]);
		else if (!strcmp(argv[i], "--service"))
			service = argv[++i];
		else if (r5_cli_security_option(&security, argv[i], argv[i + 1]))
			i++;
		else
			return r5_cli_fail(2, "health: unknown option '%s'", argv[i]);
	}
	if (!(timeout_s > 0))
		return r5_cli_fail(2, "health: --timeout wants seconds > 0");
	if (!r5_cli_security_load(&security, "health"))
		return 2;
	grpc_init();
	int rc = check(server, timeout_s, service, &security);
	grpc_shutdown();
	return rc;
}
