/* PACS delivery against a real Orthanc (recon/io/pacs*.c): the test starts Orthanc on loopback
 * (free ports, JSON config and storage in a temporary folder), stores three series by C-STORE
 * and checks Orthanc's REST API lists every instance, the series count and their UIDs; then
 * stops Orthanc, delivers again (every file lands in the spool, none lost), checks the backoff
 * (no retry before it is due), starts Orthanc again and lets r5_pacs_spool_retry and the
 * spooler thread deliver the waiting files. Issue 11: spool files are 0600 in a 0700
 * directory; a spool that is a symbolic link, world-writable or owned by another user is
 * refused; a file moved into the spool leaves its source; files adopted from a crashed run's
 * outbox are delivered (partial ".tmp" files removed); an unreadable entry does not keep the
 * others from the PACS. SKIP (77) when Orthanc is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <complex.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "recon/io/dicom.h"
#include "recon/io/pacs.h"

#define ORTHANC "/usr/sbin/Orthanc"

extern char **environ;

static char work[] = "/tmp/r5-test-pacs-XXXXXX";
static int http_port, dicom_port;
static pid_t orthanc = -1;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t length = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &length))
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

static int port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void sleep_s(double s)
{
	struct timespec t = {(time_t)s, (long)((s - (double)(long)s) * 1e9)};
	nanosleep(&t, NULL);
}

static int start_orthanc(void)
{
	char config[512], log[512];
	snprintf(config, sizeof config, "%s/orthanc.json", work);
	snprintf(log, sizeof log, "%s/orthanc.log", work);
	FILE *f = fopen(config, "w");
	if (!f)
		return 0;
	fprintf(f,
		"{\"Name\": \"r5test\", \"StorageDirectory\": \"%s/db\", \"IndexDirectory\": \"%s/db\",\n"
		" \"HttpPort\": %d, \"DicomPort\": %d, \"DicomAet\": \"R5PACS\", \"RemoteAccessAllowed\": false,\n"
		" \"AuthenticationEnabled\": false, \"DicomCheckCalledAet\": true, \"Plugins\": []}\n",
		work, work, http_port, dicom_port);
	fclose(f);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&actions, 1, 2);
	char *argv[] = {ORTHANC, config, NULL};
	int failed = posix_spawn(&orthanc, ORTHANC, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (failed)
		return 0;
	for (int i = 0; i < 300; i++) {
		if (port_open(dicom_port) && port_open(http_port))
			return 1;
		sleep_s(0.1);
	}
	return 0;
}

static void stop_orthanc(void)
{
	if (orthanc > 0) {
		kill(orthanc, SIGTERM);
		waitpid(orthanc, NULL, 0);
	}
	orthanc = -1;
}

/* GET http://127.0.0.1:http_port/path; returns the body (caller frees) or NULL. */
static char *http_get(const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)http_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char request[512];
	int n = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (write(fd, request, (size_t)n) != n) {
		close(fd);
		return NULL;
	}
	size_t size = 0, capacity = 1 << 16;
	char *response = malloc(capacity + 1);
	ssize_t got;
	while (response && (got = read(fd, response + size, capacity - size)) > 0) {
		size += (size_t)got;
		if (size == capacity) {
			char *grown = realloc(response, 2 * capacity + 1);
			if (!grown) {
				free(response);
				response = NULL;
				break;
			}
			response = grown;
			capacity *= 2;
		}
	}
	close(fd);
	if (!response)
		return NULL;
	response[size] = 0;
	char *body = strstr(response, "\r\n\r\n");
	char *copy = body ? strdup(body + 4) : NULL;
	free(response);
	return copy;
}

/* Entries of a JSON array of strings (Orthanc's /instances, /series). */
static long json_string_count(const char *json)
{
	long quotes = 0;
	for (const char *p = json; p && *p; p++)
		quotes += *p == '"';
	return quotes / 2;
}

static long orthanc_count(const char *what)
{
	char *body = http_get(what);
	long n = body ? json_string_count(body) : -1;
	free(body);
	return n;
}

/* A 3-slice image set with a g-factor: 9 instances in 3 series. */
static r5_image_set *make_set(void)
{
	r5_image_set *set = calloc(1, sizeof *set);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 16;
	dims[1] = 12;
	dims[R5_DIM_SLICE] = 3;
	assert_int_equal(r5_array_alloc_host(dims, &set->images), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &set->gfactor), R5_OK);
	for (long i = 0; i < r5_array_size(set->images); i++) {
		set->images->data[i] = (float)(i % 9) * cexpf(I * 0.2f * (float)(i % 5));
		set->gfactor->data[i] = 1.0f + 0.001f * (float)(i % 100);
	}
	set->geometry = calloc(3, sizeof *set->geometry);
	set->n_slices = 3;
	for (int s = 0; s < 3; s++) {
		r5_slice_geometry *g = &set->geometry[s];
		g->read_dir[0] = g->phase_dir[1] = g->slice_dir[2] = 1;
		g->position[2] = (float)(4 * s);
		g->present = 1;
	}
	set->fov_mm[0] = 160, set->fov_mm[1] = 120, set->fov_mm[2] = 4;
	snprintf(set->header.patient_name, sizeof set->header.patient_name, "PACS^Test");
	snprintf(set->header.patient_id, sizeof set->header.patient_id, "R5PACS01");
	snprintf(set->pipeline, sizeof set->pipeline, "cartesian");
	return set;
}

static void free_set(r5_image_set *set)
{
	r5_array_free(set->images);
	r5_array_free(set->gfactor);
	free(set->geometry);
	free(set);
}

/* Writes the set's 9 files under dir; paths[] get their names; series UIDs into uids. */
static void write_files(const char *dir, char paths[9][512], char uids[3][65])
{
	r5_image_set *set = make_set();
	assert_int_equal(r5_dicom_write_set(set, NULL, 7u, dir, NULL), R5_OK);
	/* the series UIDs are in the files: read them back through a writer-independent route */
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 3; i++) {
			char name[64];
			r5_dicom_instance_path((r5_dicom_kind)k, i, name, sizeof name);
			snprintf(paths[k * 3 + i], 512, "%s/%s", dir, name);
		}
	for (int k = 0; k < 3; k++) {
		FILE *f = fopen(paths[k * 3], "rb");
		assert_non_null(f);
		static unsigned char bytes[1 << 16];
		size_t n = fread(bytes, 1, sizeof bytes, f);
		fclose(f);
		/* (0020,000E) UI: tag bytes 20 00 0E 00 'U' 'I' length */
		uids[k][0] = 0;
		for (size_t p = 132; p + 8 < n; p++)
			if (!memcmp(bytes + p, "\x20\x00\x0e\x00UI", 6)) {
				size_t length = bytes[p + 6] | bytes[p + 7] << 8;
				memcpy(uids[k], bytes + p + 8, length);
				uids[k][length] = 0;
				if (length && uids[k][length - 1] == 0)
					uids[k][length - 1] = 0;
				break;
			}
		assert_true(r5_dicom_uid_valid(uids[k]));
	}
	free_set(set);
}

static r5_pacs_dest destination(void)
{
	r5_pacs_dest dest = {0};
	snprintf(dest.calling_ae, sizeof dest.calling_ae, "RECON5T");
	snprintf(dest.called_ae, sizeof dest.called_ae, "R5PACS");
	snprintf(dest.host, sizeof dest.host, "127.0.0.1");
	dest.port = dicom_port;
	dest.timeout_s = 5;
	return dest;
}

static void test_store_spool_retry(void **state)
{
	r5_pacs_dest dest = destination();
	char dir[600], spool[600], paths[9][512], uids[3][65];
	const char *list[9];
	snprintf(spool, sizeof spool, "%s/spool", work);
	/* 1. PACS up: every instance stored, three series listed with our UIDs */
	snprintf(dir, sizeof dir, "%s/first", work);
	write_files(dir, paths, uids);
	for (int i = 0; i < 9; i++)
		list[i] = paths[i];
	r5_pacs_result result;
	assert_int_equal(r5_pacs_deliver(&dest, spool, list, 9, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_stored, 9);
	assert_int_equal(result.n_spooled, 0);
	assert_int_equal(orthanc_count("/instances"), 9);
	assert_int_equal(orthanc_count("/series"), 3);
	char *series = http_get("/series?expand");
	assert_non_null(series);
	for (int k = 0; k < 3; k++)
		assert_non_null(strstr(series, uids[k]));
	assert_non_null(strstr(series, "\"Modality\" : \"MR\""));
	free(series);
	char *patients = http_get("/patients?expand");
	assert_non_null(patients);
	assert_non_null(strstr(patients, "R5PACS01"));
	free(patients);
	/* a wrong called AE title is refused: the error names the destination */
	r5_pacs_dest wrong = dest;
	snprintf(wrong.called_ae, sizeof wrong.called_ae, "NOTPACS");
	assert_int_equal(r5_pacs_store_files(&wrong, list, 1, NULL), R5_EIO);
	assert_non_null(strstr(r5_last_error(), "NOTPACS@127.0.0.1"));

	/* 2. PACS down: the job's images go to the spool, none lost */
	stop_orthanc();
	snprintf(dir, sizeof dir, "%s/second", work);
	write_files(dir, paths, uids);
	assert_int_equal(r5_pacs_deliver(&dest, spool, list, 9, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_stored, 0);
	assert_int_equal(result.n_spooled, 9);
	assert_int_equal(r5_pacs_spool_count(spool), 9);
	double now = (double)time(NULL);
	/* not due yet: nothing is sent, nothing leaves */
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now, &result), R5_OK);
	assert_int_equal(result.n_stored, 0);
	assert_int_equal(result.n_spooled, 9);
	/* due but still down: they stay, and back off further (2nd attempt: 10 s) */
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now + R5_PACS_BACKOFF_FIRST_S + 1, &result), R5_OK);
	assert_int_equal(result.n_spooled, 9);
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now + R5_PACS_BACKOFF_FIRST_S + 2, &result), R5_OK);
	assert_int_equal(result.n_stored, 0);

	/* 3. PACS back: the retry delivers everything and empties the spool */
	assert_true(start_orthanc());
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now + 1000, &result), R5_OK);
	assert_int_equal(result.n_stored, 9);
	assert_int_equal(result.n_spooled, 0);
	assert_int_equal(r5_pacs_spool_count(spool), 0);
	assert_int_equal(orthanc_count("/instances"), 18);
	assert_int_equal(orthanc_count("/series"), 6);
	series = http_get("/series?expand");
	for (int k = 0; k < 3; k++)
		assert_non_null(strstr(series, uids[k]));
	free(series);
}

static void test_spooler_thread(void **state)
{
	r5_pacs_dest dest = destination();
	char dir[600], spool[600], paths[9][512], uids[3][65];
	const char *list[9];
	snprintf(spool, sizeof spool, "%s/spool-thread", work);
	snprintf(dir, sizeof dir, "%s/third", work);
	write_files(dir, paths, uids);
	for (int i = 0; i < 9; i++)
		list[i] = paths[i];
	stop_orthanc();
	r5_pacs_result result;
	assert_int_equal(r5_pacs_deliver(&dest, spool, list, 9, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_spooled, 9);
	r5_pacs_spooler *spooler;
	assert_int_equal(r5_pacs_spooler_start(spool, &dest, 0.5, &spooler), R5_OK);
	assert_true(start_orthanc());
	/* first retry is due R5_PACS_BACKOFF_FIRST_S after the failure */
	for (int i = 0; i < 100 && r5_pacs_spool_count(spool) > 0; i++)
		sleep_s(0.2);
	r5_pacs_spooler_stop(spooler);
	assert_int_equal(r5_pacs_spool_count(spool), 0);
	assert_int_equal(orthanc_count("/instances"), 27);
}

static void test_bad_destination(void **state)
{
	r5_pacs_dest dest = {0};
	const char *list[] = {"/nonexistent.dcm"};
	assert_int_equal(r5_pacs_store_files(&dest, list, 1, NULL), R5_EINVAL);
	dest = destination();
	assert_int_equal(r5_pacs_store_files(&dest, list, 1, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "/nonexistent.dcm"));
	/* a spool that cannot be written: reported, counted as failed */
	r5_pacs_dest down = dest;
	down.port = free_port();
	char path[600];
	snprintf(path, sizeof path, "%s/first/magnitude/IM_00001.dcm", work);
	const char *one[] = {path};
	r5_pacs_result result;
	assert_int_not_equal(r5_pacs_deliver(&down, "/proc/no-spool-here", one, 1, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_failed, 1);
}

/* mode bits of path (lstat), -1 when missing */
static int mode_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void copy_file(const char *from, const char *to)
{
	char command[1400];
	snprintf(command, sizeof command, "cp '%s' '%s'", from, to);
	assert_int_equal(system(command), 0);
}

/* Every file and directory under dir: files 0600, directories 0700; returns the file count. */
static long check_private_tree(const char *dir)
{
	char command[800], line[1200];
	snprintf(command, sizeof command, "find '%s' -mindepth 1 -printf '%%m %%y %%p\\n'", dir);
	FILE *p = popen(command, "r");
	assert_non_null(p);
	long files = 0;
	while (fgets(line, sizeof line, p)) {
		unsigned mode;
		char type;
		assert_int_equal(sscanf(line, "%o %c", &mode, &type), 2);
		if (type == 'f') {
			files++;
			if (mode != 0600)
				fail_msg("file not 0600: %s", line);
		} else if (type == 'd') {
			if (mode != 0700)
				fail_msg("directory not 0700: %s", line);
		} else {
			fail_msg("neither file nor directory in the spool: %s", line);
		}
	}
	pclose(p);
	return files;
}

static void test_spool_private(void **state)
{
	r5_pacs_dest down = destination();
	down.port = free_port();
	char dir[600], spool[600], paths[9][512], uids[3][65];
	const char *list[9];
	snprintf(dir, sizeof dir, "%s/private-src", work);
	write_files(dir, paths, uids);
	for (int i = 0; i < 9; i++)
		list[i] = paths[i];
	mode_t old_mask = umask(022); /* what a service usually runs with */
	snprintf(spool, sizeof spool, "%s/private-spool", work);
	r5_pacs_result result;
	assert_int_equal(r5_pacs_deliver(&down, spool, list, 9, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_spooled, 9);
	assert_non_null(strstr(result.store_error, "association failed"));
	assert_int_equal(mode_of(spool), 0700);
	assert_int_equal(check_private_tree(spool), 18); /* 9 .dcm + 9 .meta, all 0600 */

	/* wider permissions, a symbolic link, another owner: refused, the message says which */
	assert_int_equal(chmod(spool, 0777), 0);
	assert_int_not_equal(r5_pacs_deliver(&down, spool, list, 1, R5_PACS_COPY, &result), R5_OK);
	assert_int_equal(result.n_failed, 1);
	assert_non_null(strstr(result.spool_error, "mode 0777"));
	assert_non_null(strstr(result.spool_error, spool));
	assert_int_equal(r5_pacs_spool_count(spool), 0); /* nor is it read */
	assert_int_equal(chmod(spool, 0700), 0);
	char link[600];
	snprintf(link, sizeof link, "%s/private-link", work);
	assert_int_equal(symlink(spool, link), 0);
	assert_int_not_equal(r5_pacs_deliver(&down, link, list, 1, R5_PACS_COPY, &result), R5_OK);
	assert_non_null(strstr(result.spool_error, "symbolic link"));
	r5_pacs_spooler *spooler = NULL;
	assert_int_not_equal(r5_pacs_spooler_start(link, &down, 1, &spooler), R5_OK);
	assert_null(spooler);
	if (geteuid() == 0) {
		assert_int_equal(chown(spool, 65534, 65534), 0);
		assert_int_not_equal(r5_pacs_deliver(&down, spool, list, 1, R5_PACS_COPY, &result), R5_OK);
		assert_non_null(strstr(result.spool_error, "owned by uid 65534"));
		assert_int_equal(chown(spool, 0, 0), 0);
	}
	umask(old_mask);
	assert_int_equal(r5_pacs_spool_count(spool), 9);
}

static void test_move_adopt_unreadable(void **state)
{
	r5_pacs_dest dest = destination();
	r5_pacs_dest down = dest;
	down.port = free_port();
	char dir[600], spool[600], orphan[600], path[1200], paths[9][512], uids[3][65];
	const char *list[9];
	snprintf(dir, sizeof dir, "%s/move-src", work);
	write_files(dir, paths, uids);
	for (int i = 0; i < 9; i++)
		list[i] = paths[i];
	snprintf(spool, sizeof spool, "%s/move-spool", work);
	/* moved: the source files become the spool entries */
	r5_pacs_result result;
	assert_int_equal(r5_pacs_deliver(&down, spool, list, 3, R5_PACS_MOVE, &result), R5_OK);
	assert_int_equal(result.n_spooled, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(mode_of(paths[i]), -1);
	/* an outbox a killed run left: complete files, one partial .tmp; adopted, due at once */
	snprintf(orphan, sizeof orphan, "%s/orphan", work);
	assert_int_equal(mkdir(orphan, 0700), 0);
	for (int i = 3; i < 9; i++) {
		snprintf(path, sizeof path, "%s/IM_%d.dcm", orphan, i);
		copy_file(paths[i], path);
	}
	snprintf(path, sizeof path, "%s/.IM_9.dcm.tmp", orphan);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("partial", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/IM_3.meta", orphan); /* as in a spool of an older version */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("attempts 4\nnext_s 0\nsource \n", f);
	fclose(f);
	long moved = 0;
	assert_int_equal(r5_pacs_spool_adopt(spool, orphan, &moved), R5_OK);
	assert_int_equal(moved, 6);
	assert_int_equal(mode_of(orphan), -1); /* removed, .tmp and .meta included */
	assert_int_equal(r5_pacs_spool_count(spool), 9);
	/* a spool entry that is not DICOM backs off; it must not keep the others from the PACS */
	snprintf(path, sizeof path, "%s/0-0-0.dcm", spool);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not dicom", f);
	fclose(f);
	long before = orthanc_count("/instances");
	double now = (double)time(NULL);
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now, &result), R5_OK);
	/* the adopted six were due now; the three moved ones are due in 5 s */
	assert_int_equal(result.n_stored, 6);
	assert_int_equal(result.n_spooled, 4);
	assert_int_equal(r5_pacs_spool_retry(spool, &dest, now + 1000, &result), R5_OK);
	assert_int_equal(result.n_stored, 3);
	assert_int_equal(result.n_spooled, 1);
	assert_int_equal(orthanc_count("/instances"), before + 9);
	assert_int_not_equal(mode_of(path), -1); /* the unreadable one still waits: nothing is dropped */
}

int main(void)
{
	if (access(ORTHANC, X_OK) != 0) {
		printf("SKIP: %s not installed\n", ORTHANC);
		return 77;
	}
	if (!mkdtemp(work))
		return 1;
	http_port = free_port();
	do
		dicom_port = free_port();
	while (dicom_port == http_port);
	if (http_port <= 0 || dicom_port <= 0 || !start_orthanc()) {
		printf("SKIP: Orthanc did not start on loopback (log in %s)\n", work);
		stop_orthanc();
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_spool_retry),
		cmocka_unit_test(test_spooler_thread),
		cmocka_unit_test(test_bad_destination),
		cmocka_unit_test(test_spool_private),
		cmocka_unit_test(test_move_adopt_unreadable),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	stop_orthanc();
	if (!failed) {
		char command[600];
		snprintf(command, sizeof command, "rm -rf '%s'", work);
		if (system(command) != 0)
			fprintf(stderr, "could not remove %s\n", work);
	}
	return failed;
}
