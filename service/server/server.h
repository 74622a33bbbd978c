/* recon5td internals shared by its files:
 *   server.c        gRPC server(s), completion-queue threads, new calls and routing, shutdown
 *   calls.c         the per-call state machine: outgoing event queue, Reconstruct ingest
 *                   (header → scan builder → End → job), Capabilities, Health
 *   jobs.c          bounded priority queue and worker threads (one r5_ctx each), images out
 *   admission.c     admission of Reconstruct streams (draining, max_streams, per client
 *                   address), the list of open streams and the ingest idle reaper
 *   ingest.c        the ingest pool: threads that parse messages and sort acquisitions into
 *                   k-space, memory reserved as data arrives
 *   early_calib.c   coil maps computed while the scan streams in, once its calibration block
 *                   is complete (a calibration task on a worker), taken by the scan's job
 *   realtime.c      pipeline realtime: a frame per window of spokes as soon as it is due, sent
 *                   while the scan streams in, on the stream's own frame thread
 *   capabilities.c  Capabilities and health replies
 *   dicom_out.c     DICOM encoding: Image events and/or files for the PACS
 *   pacs_out.c      PACS push: spool directories, delivery after a job, the spooler thread
 *   quality.c       quality figures against a ground truth sent with the ScanHeader
 *   metrics.c       Prometheus registry and its GET /metrics endpoint (metrics_listen, metrics.h)
 *   main.c          configuration, signals, drain
 *   security.c      TLS credentials (certificate reload), who a call is and what its role may
 *                   do (auth.h: roles, tokens file), the audit line of each decision (audit.h)
 * Completion-queue threads only move bytes: a received message goes to the ingest pool, which
 * parses it, sorts its acquisitions into k-space (readout oversampling removal included) and
 * only then arms the next receive, so one stream has one message in flight and a slow stream
 * is held back by HTTP/2 flow control. Reconstruction runs on workers. A call is reference counted: one reference per batch in flight plus one for
 * a job that holds it; the last one frees it. */
#ifndef R5_SERVER_SERVER_H
#define R5_SERVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>

#include <grpc/grpc.h>

#include "config.h"
#include "recon/io/pacs.h"
#include "recon/io/scan.h"
#include "recon/pipeline/pipeline.h"
#include "service/common/svc_proto.h"

/* ThreadSanitizer cannot see the synchronisation inside Debian's (uninstrumented) gRPC: a tag
 * handed to the completion queue on one thread and returned on another would look like a
 * race on everything written before. The hand-off is made explicit for TSan builds: release
 * on the tag where a batch or request starts, acquire where the completion queue returns it. */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define R5_TAG_RELEASE(tag) __tsan_release(tag)
#define R5_TAG_ACQUIRE(tag) __tsan_acquire(tag)
#else
#define R5_TAG_RELEASE(tag) ((void)(tag))
#define R5_TAG_ACQUIRE(tag) ((void)(tag))
#endif

typedef struct r5_server r5_server;
typedef struct r5_call r5_call;
typedef struct r5_job r5_job;
typedef struct r5_realtime r5_realtime;

enum r5_tag_kind { TAG_NEW, TAG_RECV, TAG_SEND, TAG_CLOSE, TAG_SHUTDOWN };
typedef struct r5_tag {
	enum r5_tag_kind kind;
	r5_call *call;
	r5_server *server;
} r5_tag;

enum r5_call_kind { CALL_UNKNOWN, CALL_RECONSTRUCT, CALL_CAPABILITIES, CALL_HEALTH, CALL_CANCEL_JOB, CALL_DRAIN };

typedef struct r5_outgoing {
	grpc_byte_buffer *buffer; /* NULL: this item is the final status */
	grpc_status_code code;
	char *message;
	struct r5_outgoing *next;
} r5_outgoing;

struct r5_call {
	r5_server *server;
	grpc_server *grpc_server; /* the one it arrived on (main or health) */
	int health_port;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array request_metadata;
	enum r5_call_kind kind;
	r5_tag tag_new, tag_recv, tag_send, tag_close;

	pthread_mutex_t lock;
	int refs;
	grpc_byte_buffer *recv_buffer;
	atomic_int cancelled; /* client cancel, deadline or network failure */
	int close_cancelled_out; /* written by RECV_CLOSE_ON_SERVER */
	r5_outgoing *out_head, *out_tail;
	grpc_byte_buffer *sending;
	int send_in_flight, status_queued, metadata_sent;
	grpc_slice status_details;
	int status_details_set;

	/* Reconstruct */
	int counted; /* counts against max_streams, listed in the server's open streams */
	r5_call *open_prev, *open_next;
	char peer[64];             /* client address without the port (per-peer limit) */
	atomic_long last_message_ms; /* monotonic ms of the last message (ingest idle timeout) */
	atomic_int ingesting;      /* between admission and End (or the end of the stream) */
	atomic_int idle_expired;   /* ended by the idle reaper */
	/* CancelJob from an admin (admission.c): the job stops at its next check, a stream still
	 * ingesting is ended by the reaper; cancelled_by is written before the flag is set */
	atomic_int admin_cancelled;
	char cancelled_by[160];
	long reserve_cap;          /* the most this stream may reserve: the job's estimate */
	Recon5t__V1__ScanMessage *header_message; /* keeps the ScanHeader (patient data, outputs) */
	r5_scan_builder *builder;
	r5_recon_params params;
	long reserved_bytes; /* memory budget held until the job ends */
	int got_end;
	long n_acquisitions, bytes_in;
	/* FORMAT_NIFTI: the SHA-256 of the stream (recon/io/bids.h InputStreamHash), hashed as the
	 * header and acquisitions are added, ended at End */
	struct r5_sha256 *stream_hash;
	char stream_sha256[65];
	double t_start, t_header, t_end;
	char job_id[24];
	char client_job_id[64];
	int deidentify;        /* ScanHeader parameter deidentify = 1: DICOM without patient data */
	gpr_timespec deadline; /* monotonic */
	/* early_calib.c, under the server lock: the state of the early calibration, its result
	 * until the job takes it, and the budget it holds until r5_call_release_memory */
	int early_state;
	struct r5_calibration *early;
	long early_reserved;
	/* realtime.c: pipeline realtime's frames and frame thread (NULL for other pipelines) */
	r5_realtime *realtime;
	/* security.c: who the client is (certificate or token name; never a token), its role
	 * (auth.h r5_role), the full peer address; audited: the audit line is written */
	char identity[160];
	int role;
	char peer_full[128];
	int authorized, audited, priority_capped;
	/* mrd.c: an MRD v1 connection rather than a gRPC call (call is NULL): what would be sent
	 * on the gRPC stream goes to r5_mrd_deliver instead */
	struct r5_mrd_conn *mrd;
};

struct r5_job {
	r5_call *call;
	r5_scan *scan;
	/* an early calibration task (early_calib.c) rather than a reconstruction: its input, and
	 * need_bytes is what it reserves while it runs */
	int calibration;
	struct r5_calibration *early_input;
	long early_held; /* a job: the budget its call holds for the maps it took (early_calib.c) */
	long scan_bytes; /* a calibration task: the whole k-space grid of its scan */
	int priority; /* 0 console, 1 research */
	long need_bytes; /* estimated peak of the reconstruction, k-space included */
	double t_queued;
	r5_job *next;
	/* progress throttling */
	char last_stage[32];
	double stage_started; /* metrics: when last_stage began */
	double last_fraction, last_sent;
};

struct r5_server {
	r5_server_config config;
	grpc_completion_queue *cq;
	grpc_server *main_server, *health_server;
	int main_port, health_port;
	int metrics_port; /* metrics.c: the Prometheus endpoint's bound port, 0 = none */
	pthread_t *cq_threads;
	int n_cq_threads;

	pthread_mutex_t lock;
	pthread_cond_t changed;
	/* queue */
	r5_job *queue_head[2], *queue_tail[2];
	int queued, running, active_streams, shutdowns_pending;
	int calibrations_queued; /* early calibration tasks in the queue (not counted in queued) */
	long memory_in_use, memory_budget;
	/* admission.c: open Reconstruct streams (under lock) and the idle reaper */
	r5_call *open_head;
	pthread_t reaper;
	int reaper_started, stop_reaper;
	/* ingest.c: messages waiting for an ingest thread */
	struct r5_ingest_item *ingest_head, *ingest_tail;
	pthread_mutex_t ingest_lock;
	pthread_cond_t ingest_changed;
	pthread_t *ingest_threads;
	int n_ingest_threads, stop_ingest;
	long next_job;
	int stop_workers;
	pthread_t *workers;
	int n_workers;
	/* workers with a working back-end context (jobs.c): a worker whose context cannot be made
	 * or rebuilt after a device loss leaves the pool; at 0 jobs are refused (UNAVAILABLE) and
	 * health says NOT_SERVING. Under lock. */
	int usable_workers;
	char no_worker_reason[256]; /* why the last worker left */
	char backend_names[4][16];
	int n_backends;
	char worker_backend[16];
	atomic_int draining; /* SIGTERM: refuse new streams, health NOT_SERVING */
	atomic_int aborting; /* grace passed: stop in-flight jobs */
	/* PACS (pacs_out.c); pacs_enabled 0 when none is configured */
	int pacs_enabled;
	r5_pacs_dest pacs_dest;
	char pacs_name[300];    /* CALLED_AE@host:port */
	char pacs_spool[1400];  /* spool of undelivered instances for pacs_dest */
	char outbox_dir[1100];  /* per-job DICOM files while they are delivered */
	r5_pacs_spooler *spooler;
	int spool_lock_fd;     /* lock file of the private spool folder, held while running */
	char job_id_run[12];   /* job_ids.c: this run's part of every job id ("" until the first) */
	/* what each worker's context says about its device (Capabilities) */
	char worker_describe[16][160];
	int frame_threads; /* realtime.c: real-time frame threads running (under lock) */
	/* counters (for logs and Capabilities) */
	long jobs_done, jobs_failed;
	/* security.c: tokens file (NULL: none), audit log (NULL: none), TLS certificate state */
	struct r5_auth_tokens *tokens;
	struct r5_audit *audit;
	struct r5_tls *tls;
	/* mrd.c: the MRD listener (NULL: off) */
	struct r5_mrd_listener *mrd;
};

/* server.c */
r5_status r5_server_start(r5_server *s, const r5_server_config *config);
/* Stops accepting calls, waits for the shutdown tags, stops workers and cq threads. */
void r5_server_stop(r5_server *s);
/* Starts the drain (SIGTERM, or an admin RPC; any thread, idempotent): health says NOT_SERVING,
 * the main server is shut down so that gRPC core sends GOAWAY (clients' channels reconnect
 * elsewhere; a fresh channel here is refused, UNAVAILABLE) while in-flight calls go on; the
 * separate health server (health_listen) keeps answering NOT_SERVING. Without health_listen the
 * main server stays up (its health must answer) and only refuses new streams. Returns 1 when this call
 * started it, 0 when a drain was already under way. The grace period and the cancel are the
 * caller's (main.c). */
int r5_server_begin_drain(r5_server *s, const char *why);
void r5_server_request_call(r5_server *s, grpc_server *on, int health_port);

/* calls.c */
void r5_call_on_new(r5_call *c, int ok);
void r5_call_on_recv(r5_call *c, int ok);
void r5_call_on_send(r5_call *c, int ok);
void r5_call_on_close(r5_call *c, int ok);
void r5_call_ref(r5_call *c);
void r5_call_unref(r5_call *c);
/* Queues one event (takes the buffer) / the final status; both thread-safe. */
void r5_call_send(r5_call *c, grpc_byte_buffer *buffer);
void r5_call_send_event(r5_call *c, const Recon5t__V1__ReconEvent *event);
void r5_call_finish(r5_call *c, grpc_status_code code, const char *message);
/* Finishes with the mapped status of `status` and r5_last_error() (and an Error event). */
void r5_call_fail(r5_call *c, r5_status status, const char *stage);
/* Releases k-space memory held by the call (builder and budget). */
void r5_call_release_memory(r5_call *c);
int r5_call_is_cancelled(r5_call *c);
int r5_call_is_finished(r5_call *c); /* its status is queued (failed, cancelled or done) */

/* jobs.c */
r5_status r5_jobs_start(r5_server *s);
void r5_jobs_stop(r5_server *s);
/* Queues the job; R5_EBUSY when the queue is full. *position: jobs ahead. */
r5_status r5_jobs_submit(r5_server *s, r5_job *job, int *position);
long r5_server_reserve(r5_server *s, long bytes); /* returns 0 or bytes reserved; <0 over budget */
void r5_server_release(r5_server *s, long bytes);
/* Queues an early calibration task (not counted against max_queue; at most max_queue of them);
 * R5_EBUSY when none may be queued now. */
r5_status r5_jobs_submit_calibration(r5_server *s, r5_job *task);
/* Why a job must stop now (client cancel, deadline, server abort); R5_OK: go on. */
r5_status r5_job_stop_reason(r5_job *job);
void r5_job_send_progress(r5_job *job, const char *stage, double fraction);

/* early_calib.c */
/* After a batch was sorted in (ingest thread): queues the calibration task the first time the
 * scan's calibration block is complete, when the pipeline and the scan allow it. */
void r5_early_calib_offer(r5_call *c);
/* Runs a calibration task on a worker's context, then frees the task (and its reference). */
void r5_early_calib_run(r5_ctx *ctx, r5_job *task);
/* Frees a calibration task that will not run (shutdown, no usable worker). */
void r5_early_calib_discard(r5_job *task);
/* The job's calibration made ahead, waiting while it is being computed (Progress
 * "calibration"), or NULL; the job owns what it returns (r5_calibration_free). */
struct r5_calibration *r5_early_calib_take(r5_job *job);
/* Frees the result and the reservation (r5_call_release_memory). */
void r5_early_calib_release(r5_call *c);

/* realtime.c */
int r5_realtime_wanted(const r5_call *c); /* the request's pipeline is realtime */
/* At the header (ingest thread, builder made): checks the request (frame_spokes, frame_step >= 1,
 * FORMAT_FLOAT32, a 2D non-Cartesian header), reserves the frames' fixed memory, starts the
 * frame thread; c->realtime is set (even on failure: call_destroy frees it). */
r5_status r5_realtime_begin(r5_call *c, const Recon5t__V1__ScanHeader *header);
/* After a batch was sorted in: queues every frame that became due (R5_EINVAL: Cartesian scan). */
r5_status r5_realtime_offer(r5_call *c);
/* End: finishes the scan (frame_spokes larger than the scan: R5_EINVAL), frees its k-space; the
 * frame thread ends the call after the last frame. */
r5_status r5_realtime_end(r5_call *c);
/* The frame thread stops within a frame and gives back what it holds (any thread, any time). */
void r5_realtime_stop(r5_call *c);
void r5_realtime_free(r5_realtime *rt); /* call_destroy: the frame thread has ended */
/* Waits until every frame thread has ended (server stop, after the calls were cancelled). */
void r5_realtime_wait_all(r5_server *s);

/* images_out.c: one Image event of a frame: image [x, y, z] with set's geometry, repetition as
 * given; 0 when it could not be encoded. */
int r5_images_out_frame(r5_call *c, const r5_image_set *set, const r5_array *image, long repetition,
			Recon5t__V1__OutputKind kind, uint32_t image_index);

/* Parses one received ScanMessage and acts on it, arms the next receive; takes the buffer
 * and the reference the receive held (ingest threads). */
void r5_call_on_message(r5_call *c, grpc_byte_buffer *buffer);

/* ingest.c: the seam shared by gRPC streams and MRD connections */
r5_status r5_ingest_header(r5_call *c, const Recon5t__V1__ScanHeader *header);
r5_status r5_ingest_batch(r5_call *c, const Recon5t__V1__AcquisitionBatch *batch);
r5_status r5_ingest_acquisition(r5_call *c, const ISMRMRD_AcquisitionHeader *head, const float complex *data,
				const float *traj);
r5_status r5_ingest_end(r5_call *c);

/* mrd.c: the MRD v1 listener (mrd_listen); off when not configured */
r5_status r5_mrd_start(r5_server *s);
void r5_mrd_stop(r5_server *s);
/* An event (buffer, a packed ReconEvent) or the final status (buffer NULL) of an MRD call,
 * in the order the call queued them (any thread; called under no lock). Takes the buffer. */
void r5_mrd_deliver(r5_call *c, grpc_byte_buffer *buffer, grpc_status_code code, const char *message);

/* admission.c */
/* Admits a Reconstruct stream (draining, max_streams, max_streams_per_peer) and lists it; on
 * refusal finishes the call with the status and returns 0. */
int r5_admission_admit(r5_call *c);
/* Unlists the call (call_destroy, server lock held). */
void r5_admission_unlist(r5_call *c);
/* CancelJob: marks the listed, unfinished call with that job id cancelled by `by`; 1 when found,
 * `state` then says whether it was ingesting or queued/running. */
int r5_admission_cancel_job(r5_server *s, const char *job_id, const char *by, char *state, size_t state_size);
void r5_admission_touch(r5_call *c); /* the next receive is armed: idle time counts from now */
void r5_admission_busy(r5_call *c);  /* a message arrived: not idle until touched again */
r5_status r5_admission_start(r5_server *s);
void r5_admission_stop(r5_server *s);

/* ingest.c */
r5_status r5_ingest_start(r5_server *s);
/* Processes what is queued, then stops the ingest threads. */
void r5_ingest_stop(r5_server *s);
/* Queues a received message (takes the buffer and the receive's reference). */
void r5_ingest_submit(r5_call *c, grpc_byte_buffer *buffer);

/* capabilities.c */
grpc_byte_buffer *r5_capabilities_reply(r5_server *s);
grpc_byte_buffer *r5_health_reply(r5_server *s, const char *service, grpc_status_code *code);

/* dicom_out.c: the job's DICOM instances (recon/io/dicom.h), encoded once: as Image events
 * when send_events, and as files under dir (NULL: none) for the PACS; *paths (n_paths
 * entries, caller frees with r5_dicom_out_free_paths) names the files written. */
int r5_dicom_out_available(void);
typedef struct r5_dicom_files {
	int dir_fd;        /* the directory written into (from r5_pacs_private_dir) */
	const char *dir;   /* its path */
	char **paths;      /* n_paths files written (complete: temporary name, fsync, rename) */
	long n_paths;
	long n_unwritten;  /* instances that could not be written (disk full, ...): none is partial */
	char failure[256]; /* the first write failure, "" when none */
} r5_dicom_files;
/* Encodes the set; a file that cannot be written stops the writing, never the events (the
 * client gets its images whatever the disk says), and is counted in files->n_unwritten.
 * files NULL: events only; dir_fd < 0: nothing written, all counted (failure set by the
 * caller). Returns an error only when encoding fails. */
r5_status r5_dicom_out_run(r5_call *c, const r5_image_set *set, int send_events, r5_dicom_files *files,
			   uint32_t *n_images);
void r5_dicom_out_free_paths(char **paths, long n);

/* pacs_out.c */
typedef struct r5_pacs_outcome {
	int attempted;
	r5_pacs_result result;
	char message[512];
} r5_pacs_outcome;
/* Creates the spool directories and starts the spooler when a PACS is configured. */
r5_status r5_pacs_out_start(r5_server *s);
void r5_pacs_out_stop(r5_server *s);
/* 1 when this job's series goes to the PACS (configured, not skipped by the ScanHeader). */
int r5_pacs_out_wanted(const r5_call *c);
/* Writes the set as DICOM into the job's outbox directory (sending Image events too when
 * send_events), delivers it (what is not stored is moved into the spool) and removes the
 * outbox. Neither a full disk nor a PACS that is down fails the job: outcome counts stored,
 * spooled and failed instances and says why. An encoding failure is returned. */
r5_status r5_pacs_out_job(r5_call *c, const r5_image_set *set, int send_events, uint32_t *n_images,
			  r5_pacs_outcome *outcome);

/* security.c */
/* Loads the tokens file and opens the audit log (r5_server_start); _stop frees them. */
r5_status r5_security_start(r5_server *s);
void r5_security_stop(r5_server *s);
/* The main port's credentials: TLS (tls_cert set; certificate files re-read when they change)
 * or plaintext; NULL with r5_last_error() when the files are not usable. */
grpc_server_credentials *r5_security_server_credentials(r5_server *s);
/* Who the call is and whether its role may call its method (routed kind): GRPC_STATUS_OK, or
 * UNAUTHENTICATED / PERMISSION_DENIED with the reason in message. Sets c->identity, c->role. */
grpc_status_code r5_security_authorize(r5_call *c, char *message, size_t size);
/* A research client's Reconstruct runs at research priority whatever it asked (ingest). */
void r5_security_cap_priority(r5_call *c, Recon5t__V1__ScanHeader *header);
/* The call's audit line, once, when its status is decided (calls.c finish). */
void r5_security_audit(r5_call *c, grpc_status_code code);

/* job_ids.c */
/* The next job id into id: "j" + the time of this run's first id (ms since the epoch, base
 * 36) + "-" + the run's counter, e.g. "jm5x1c2k9-0001"; unique across restarts. Server lock
 * held. */
void r5_job_id_next(r5_server *s, char *id, size_t size);

/* quality.c */
/* Validates a ScanHeader.ground_truth (dims, byte count) with a message naming the field. */
r5_status r5_quality_check_truth(const Recon5t__V1__GroundTruth *truth);
/* nrmse/psnr/ssim/scale of the set's images (magnitude, least-squares scaled) against the
 * truth, compared after squeezing size-1 dims, frame by frame along dim 10 (the means), one
 * image against a dynamic truth's time average; R5_EINVAL when the shapes differ. */
r5_status r5_quality_of_set(const Recon5t__V1__GroundTruth *truth, const r5_image_set *set, double figures[4]);

#endif
