/* Unit tests for secret.c: the key file and systemd credential sources, whitespace, modes,
 * messages that name the source but never the key. (Secret Manager: test_google_auth.py.) */
#include "autoconfig.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "secret.h"
#include "tap.h"
#include "util.h"

#define KEY "st-api-KEY-0123456789abcdef"

static char tmpdir[] = "/tmp/stbq-secret-XXXXXX";

/* Every record the code under test logs, for inspection. */
static struct buf logged;
static int warnings, errors;

static void sink(int prio, const char *message, const struct log_field *fields, size_t nfields,
                 void *userdata)
{
	(void)fields;
	(void)nfields;
	(void)userdata;
	if (prio == LOG_WARNING)
		warnings++;
	if (prio <= LOG_ERR)
		errors++;
	buf_printf(&logged, "%d %s\n", prio, message);
}

static void reset_log(void)
{
	buf_reset(&logged);
	buf_puts(&logged, "");
	warnings = errors = 0;
}

static char *key_file(const char *name, const char *content, mode_t mode)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		return NULL;
	if (util_write_file_atomic(path, content, strlen(content), mode) < 0 ||
	    chmod(path, mode) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static struct config file_config(const char *path)
{
	struct config c = {0};
	c.seetickets.key_source = CONFIG_KEY_FILE;
	c.seetickets.key_ref = (char *)path;
	return c;
}

static bool key_is(const struct secbuf *k, const char *want)
{
	return k && secbuf_len(k) == strlen(want) &&
	       memcmp(secbuf_expose(k), want, strlen(want)) == 0;
}

static void test_file_key_is_stripped_of_surrounding_whitespace(void)
{
	static const char *const spellings[] = {KEY, KEY "\n", KEY "\r\n", "  " KEY " \t\n\n",
	                                        "\n" KEY};
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		char *path = key_file("key", spellings[i], 0640);
		struct config c = file_config(path);
		struct secbuf *k = NULL;
		reset_log();
		CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), 0);
		CHECK(key_is(k, KEY));
		CHECK_INT(warnings + errors, 0);
		CHECK(strstr(logged.data, KEY) == NULL);
		secbuf_free(k);
		free(path);
	}
}

static void test_empty_key_file_is_an_error(void)
{
	static const char *const empties[] = {"", "\n", " \r\n\t "};
	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		char *path = key_file("empty", empties[i], 0600);
		struct config c = file_config(path);
		struct secbuf *k = (struct secbuf *)1;
		reset_log();
		CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EINVAL);
		CHECK(k == NULL);
		CHECK_INT(errors, 1);
		CHECK(strstr(logged.data, path) != NULL && strstr(logged.data, "empty") != NULL);
		free(path);
	}
}

static void test_key_with_two_lines_is_refused_without_echoing_it(void)
{
	char *path = key_file("two", KEY "\nsecond-line-SECRET\n", 0600);
	struct config c = file_config(path);
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EINVAL);
	CHECK(k == NULL);
	CHECK(strstr(logged.data, path) != NULL);
	CHECK(strstr(logged.data, KEY) == NULL && strstr(logged.data, "SECRET") == NULL);
	free(path);
}

static void test_missing_key_file_names_the_path(void)
{
	char *path = NULL;
	CHECK(asprintf(&path, "%s/does-not-exist", tmpdir) > 0);
	struct config c = file_config(path);
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -ENOENT);
	CHECK(k == NULL);
	CHECK_INT(errors, 1);
	CHECK(strstr(logged.data, path) != NULL);
	free(path);
}

static void test_unreadable_key_file_is_an_error(void)
{
	if (geteuid() == 0) {
		/* root reads anything: use a directory instead, which is not a key file either. */
		struct config c = file_config(tmpdir);
		struct secbuf *k = NULL;
		reset_log();
		CHECK(secret_load(&c, NULL, NULL, NULL, &k) < 0);
		CHECK(k == NULL && errors == 1 && strstr(logged.data, tmpdir) != NULL);
		return;
	}
	char *path = key_file("locked", KEY, 0000);
	struct config c = file_config(path);
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EACCES);
	CHECK(strstr(logged.data, path) != NULL);
	free(path);
}

/* A key file open to every user is refused, naming the fix (it used to be
 * only a warning); group-readable is how the package installs it. */
static void test_world_readable_key_file_is_refused_group_readable_is_not(void)
{
	char *path = key_file("open", KEY "\n", 0644);
	struct config c = file_config(path);
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EPERM);
	CHECK(k == NULL);
	CHECK(strstr(logged.data, path) != NULL && strstr(logged.data, "0644") != NULL);
	CHECK(strstr(logged.data, "chmod o-rwx") != NULL);
	CHECK(strstr(logged.data, KEY) == NULL);

	/* 0640 root:seetickets-bq is how the package installs it: accepted. */
	CHECK_INT(chmod(path, 0640), 0);
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), 0);
	CHECK(key_is(k, KEY));
	CHECK_INT(warnings, 0);
	secbuf_free(k);

	/* Owned by another user who is not root: refused. */
	if (geteuid() == 0) {
		CHECK_INT(chown(path, 1234, 0), 0);
		reset_log();
		CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EPERM);
		CHECK(strstr(logged.data, "uid 1234") != NULL);
	}
	free(path);
}

static void test_oversized_key_file_is_refused(void)
{
	char *big = malloc(SECRET_MAX_BYTES + 2);
	memset(big, 'k', SECRET_MAX_BYTES + 1);
	big[SECRET_MAX_BYTES + 1] = '\0';
	char *path = key_file("big", big, 0600);
	struct config c = file_config(path);
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EFBIG);
	CHECK(k == NULL);
	/* Exactly the limit is fine. */
	big[SECRET_MAX_BYTES] = '\0';
	free(path);
	path = key_file("max", big, 0600);
	c = file_config(path);
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), 0);
	CHECK_INT(secbuf_len(k), SECRET_MAX_BYTES);
	secbuf_free(k);
	free(path);
	free(big);
}

static void test_credential_is_read_from_credentials_directory(void)
{
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/creds", tmpdir);
	CHECK_INT(util_mkdir_p(dir, 0700), 0);
	char *path = NULL;
	CHECK(asprintf(&path, "%s/seetickets-api-key", dir) > 0);
	CHECK_INT(util_write_file_atomic(path, KEY "\n", strlen(KEY) + 1, 0400), 0);

	struct config c = {0};
	c.seetickets.key_source = CONFIG_KEY_CREDENTIAL;
	c.seetickets.key_ref = "seetickets-api-key";
	struct secbuf *k = NULL;
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), 0);
	CHECK(key_is(k, KEY));
	secbuf_free(k);
	k = NULL;

	c.seetickets.key_ref = "other-name";
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -ENOENT);
	CHECK(strstr(logged.data, "LoadCredential=other-name:") != NULL);

	unsetenv("CREDENTIALS_DIRECTORY");
	c.seetickets.key_ref = "seetickets-api-key";
	reset_log();
	CHECK(secret_load(&c, NULL, NULL, NULL, &k) < 0);
	CHECK(k == NULL);
	CHECK(strstr(logged.data, "CREDENTIALS_DIRECTORY") != NULL);
	CHECK(strstr(logged.data, "LoadCredential=seetickets-api-key:") != NULL);
	free(path);
}

static void test_secret_manager_without_credentials_is_refused(void)
{
	struct config c = {0};
	c.seetickets.key_source = CONFIG_KEY_SECRET;
	c.seetickets.key_ref = "projects/p/secrets/SEE_TICKETS_API_KEY/versions/latest";
	c.google.secretmanager_endpoint = "http://127.0.0.1:9";
	struct secbuf *k = NULL;
	reset_log();
	CHECK_INT(secret_load(&c, NULL, NULL, NULL, &k), -EINVAL);
	CHECK(strstr(logged.data, "projects/p/secrets/SEE_TICKETS_API_KEY/versions/latest"));
}

static void test_describe_names_each_source(void)
{
	char buf[200];
	struct config c = {0};
	c.seetickets.key_source = CONFIG_KEY_SECRET;
	c.seetickets.key_ref = "projects/p/secrets/S/versions/latest";
	CHECK_STR(secret_describe(&c, buf, sizeof(buf)),
	          "Secret Manager secret projects/p/secrets/S/versions/latest");
	c.seetickets.key_source = CONFIG_KEY_FILE;
	c.seetickets.key_ref = "/etc/seetickets-bq/api-key";
	CHECK_STR(secret_describe(&c, buf, sizeof(buf)), "file /etc/seetickets-bq/api-key");
	c.seetickets.key_source = CONFIG_KEY_CREDENTIAL;
	c.seetickets.key_ref = "seetickets-api-key";
	CHECK_STR(secret_describe(&c, buf, sizeof(buf)), "systemd credential seetickets-api-key");
	char small[8];
	CHECK_STR(secret_describe(&c, small, sizeof(small)), "systemd");
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	log_set_sink(sink, NULL);
	RUN(test_file_key_is_stripped_of_surrounding_whitespace);
	RUN(test_empty_key_file_is_an_error);
	RUN(test_key_with_two_lines_is_refused_without_echoing_it);
	RUN(test_missing_key_file_names_the_path);
	RUN(test_unreadable_key_file_is_an_error);
	RUN(test_world_readable_key_file_is_refused_group_readable_is_not);
	RUN(test_oversized_key_file_is_refused);
	RUN(test_credential_is_read_from_credentials_directory);
	RUN(test_secret_manager_without_credentials_is_refused);
	RUN(test_describe_names_each_source);
	log_set_sink(NULL, NULL);
	buf_free(&logged);
	char cmd[100];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmpdir);
	return tap_done();
}
