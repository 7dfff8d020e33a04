/* secret.c - load the See Tickets API key; never let it reach a log. */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "codec.h"
#include "gapi.h"
#include "log.h"
#include "secret.h"
#include "util.h"

/* Base64 of SECRET_MAX_BYTES plus slack: anything longer is not a payload we accept. */
#define SECRET_MAX_B64 (SECRET_MAX_BYTES / 3 * 4 + 8)

const char *secret_describe(const struct config *cfg, char *buf, size_t len)
{
	const char *ref = cfg->seetickets.key_ref ? cfg->seetickets.key_ref : "(unset)";
	switch (cfg->seetickets.key_source) {
	case CONFIG_KEY_SECRET:
		snprintf(buf, len, "Secret Manager secret %s", ref);
		break;
	case CONFIG_KEY_FILE:
		snprintf(buf, len, "file %s", ref);
		break;
	case CONFIG_KEY_CREDENTIAL:
		snprintf(buf, len, "systemd credential %s", ref);
		break;
	default:
		snprintf(buf, len, "unknown key source");
		break;
	}
	return buf;
}

static void free_wiped(unsigned char *p, size_t len)
{
	if (!p)
		return;
	util_wipe(p, len);
	free(p);
}

/* Read a whole key file, at most SECRET_MAX_BYTES. */
static int read_key_file(const char *path, const char *what, bool check_mode, unsigned char **out,
                         size_t *out_len)
{
	struct stat st;
	unsigned char *data = NULL;
	size_t n = 0;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		r = -errno;
		log_error("See Tickets API key from %s: cannot open %s: %s%s", what, path,
		          strerror(-r),
		          r == -EACCES ? " (the service user needs read access, e.g. "
		                         "root:seetickets-bq 0640)"
		                       : "");
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		log_error("See Tickets API key from %s: cannot stat %s: %s", what, path,
		          strerror(-r));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		log_error("See Tickets API key from %s: %s is not a regular file", what, path);
		goto out;
	}
	/* The Debian package installs key files root:seetickets-bq 0640, so group
	 * read is how the service user gets the key; access for every user, or
	 * an owner who could swap the key, is refused. */
	char why[PATH_MAX + 160];
	if (check_mode && (r = util_check_private_file(fd, path, why, sizeof(why))) < 0) {
		log_error("See Tickets API key from %s: %s", what, why);
		goto out;
	}
	data = malloc(SECRET_MAX_BYTES + 1);
	if (!data) {
		r = -ENOMEM;
		log_error("See Tickets API key from %s: out of memory", what);
		goto out;
	}
	for (;;) {
		ssize_t k = read(fd, data + n, SECRET_MAX_BYTES + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			log_error("See Tickets API key from %s: cannot read %s: %s", what, path,
			          strerror(-r));
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > SECRET_MAX_BYTES) {
			r = -EFBIG;
			log_error("See Tickets API key from %s: %s is larger than %d bytes, not a "
			          "key",
			          what, path, SECRET_MAX_BYTES);
			goto out;
		}
	}
out:
	close(fd);
	if (r < 0) {
		free_wiped(data, SECRET_MAX_BYTES + 1);
		return r;
	}
	*out = data;
	*out_len = n;
	return 0;
}

static int load_credential(const struct config *cfg, const char *what, unsigned char **out,
                           size_t *out_len)
{
	const char *name = cfg->seetickets.key_ref;
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *path = NULL;

	if (!name || !*name || strchr(name, '/')) {
		log_error("See Tickets API key from %s: the credential name must be a plain file "
		          "name",
		          what);
		return -EINVAL;
	}
	if (!dir || !*dir) {
		log_error("See Tickets API key from %s: $CREDENTIALS_DIRECTORY is not set; set "
		          "LoadCredential=%s:/path/to/key in the unit (systemctl edit "
		          "seetickets-bq)",
		          what, name);
		return -ENOENT;
	}
	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		log_error("See Tickets API key from %s: out of memory", what);
		return -ENOMEM;
	}
	/* systemd makes credentials 0400 for the service user: no mode check. */
	int r = read_key_file(path, what, false, out, out_len);
	if (r == -ENOENT)
		log_error(
		        "See Tickets API key from %s: no credential %s was passed to the service; "
		        "set LoadCredential=%s:/path/to/key in the unit",
		        what, name, name);
	free(path);
	return r;
}

/* The names config.c accepts, and nothing that could change the URL's shape. */
static bool secret_name_ok(const char *name)
{
	if (!name || !util_str_has_prefix(name, "projects/") || strstr(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-_./", *p)))
			return false;
	return true;
}

static int parse_crc(json_t *v, uint32_t *crc)
{
	char *end = NULL;
	unsigned long long x;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || i > UINT32_MAX)
			return -EINVAL;
		*crc = (uint32_t)i;
		return 0;
	}
	if (!json_is_string(v))
		return -EINVAL;
	const char *s = json_string_value(v);
	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	/* An int64 in the API, "safely downconverted to uint32". */
	if (errno || x > UINT32_MAX)
		return -EINVAL;
	*crc = (uint32_t)x;
	return 0;
}

static int decode_payload(const struct http_response *resp, const char *what, unsigned char **out,
                          size_t *out_len)
{
	gapi_json_secret_begin();
	json_t *root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	json_t *payload = json_object_get(root, "payload");
	json_t *data = json_object_get(payload, "data");
	json_t *crc = json_object_get(payload, "dataCrc32c");
	int r = 0;

	if (!json_is_object(root) || !json_is_object(payload) || !json_is_string(data)) {
		log_error("See Tickets API key from %s: the answer has no payload.data", what);
		r = -EBADMSG;
		goto out;
	}
	if (json_string_length(data) > SECRET_MAX_B64 ||
	    codec_base64_decode(json_string_value(data), json_string_length(data), out, out_len) <
	            0) {
		log_error(
		        "See Tickets API key from %s: payload.data is not valid base64 of at most "
		        "%d bytes",
		        what, SECRET_MAX_BYTES);
		r = -EBADMSG;
		goto out;
	}
	if (crc) {
		uint32_t want, got = codec_crc32c(0, *out, *out_len);
		if (parse_crc(crc, &want) < 0) {
			log_error("See Tickets API key from %s: payload.dataCrc32c is not a 32-bit "
			          "number",
			          what);
			r = -EBADMSG;
		} else if (want != got) {
			log_error(
			        "See Tickets API key from %s: the payload was corrupted in transit "
			        "(CRC32C %" PRIu32 " does not match the announced %" PRIu32
			        "); not using it",
			        what, got, want);
			r = -EBADMSG;
		}
		if (r < 0) {
			free_wiped(*out, *out_len);
			*out = NULL;
		}
	}
out:
	if (json_is_string(data))
		util_wipe((char *)json_string_value(data), json_string_length(data));
	json_decref(root);
	gapi_json_secret_end();
	return r;
}

static int sm_failure(int r, const struct http_response *resp, struct gauth *g, const char *what)
{
	char reason[64], msg[GAPI_MAX_MESSAGE + 1];
	const char *status = gapi_error_reason(resp, reason, sizeof(reason));
	gapi_error_message(resp, msg, sizeof(msg));

	switch (r) {
	case -ECANCELED:
		return r;
	case -EACCES:
		if (resp->status == 0) {
			log_error("See Tickets API key from %s: %s", what, msg);
			return r;
		}
		log_error(
		        "See Tickets API key from %s: access denied (HTTP 403): permission "
		        "secretmanager.versions.access is missing for the VM's service account "
		        "(roles/secretmanager.secretAccessor; credentials: %s) OR the secret does "
		        "not exist (Secret Manager reports a missing secret as 403), or the "
		        "Secret Manager API is disabled in the project. Google said: %s",
		        what, gauth_describe(g), msg);
		return -EACCES;
	case -ENOENT:
		log_error("See Tickets API key from %s: not found (HTTP 404): check the project, "
		          "secret name and version. Google said: %s",
		          what, msg);
		return -ENOENT;
	case -EKEYREJECTED:
		log_error("See Tickets API key from %s: Google rejected a freshly fetched access "
		          "token from %s (HTTP 401): %s",
		          what, gauth_describe(g), msg);
		return -EACCES;
	case -EAGAIN:
		log_warning(
		        "See Tickets API key from %s: Secret Manager is unavailable for now: %s",
		        what, msg);
		return -EAGAIN;
	default:
		break;
	}
	if (resp->status == 400 && status && strcmp(status, "FAILED_PRECONDITION") == 0) {
		log_error("See Tickets API key from %s: the version is disabled or destroyed "
		          "(HTTP 400 FAILED_PRECONDITION); enable it or point api_key_secret at "
		          "another version (\"latest\" does not skip disabled versions). Google "
		          "said: %s",
		          what, msg);
		return -EINVAL;
	}
	if (resp->status == 400) {
		log_error("See Tickets API key from %s: request refused (HTTP 400%s%s): %s", what,
		          status ? " " : "", status ? status : "", msg);
		return -EINVAL;
	}
	if (resp->status == 0) {
		log_error("See Tickets API key from %s: %s", what, msg);
		return r == -EPERM ? -EACCES : r;
	}
	log_error("See Tickets API key from %s: HTTP %ld: %s", what, resp->status, msg);
	return r;
}

static int load_secret_manager(const struct config *cfg, struct gauth *g, struct http_client *http,
                               const struct http_policy *policy, const char *what,
                               unsigned char **out, size_t *out_len)
{
	const char *name = cfg->seetickets.key_ref;
	const char *ep = cfg->google.secretmanager_endpoint;
	struct http_response resp = {0};
	char *url = NULL;
	int r;

	if (!g || !http) {
		log_error("See Tickets API key from %s: Google credentials are needed to read it",
		          what);
		return -EINVAL;
	}
	if (!secret_name_ok(name)) {
		log_error("See Tickets API key from %s: not a secret version name "
		          "(projects/P/secrets/S/versions/V)",
		          what);
		return -EINVAL;
	}
	if (!ep || !*ep)
		ep = "https://secretmanager.googleapis.com";
	size_t eplen = strlen(ep);
	while (eplen > 0 && ep[eplen - 1] == '/')
		eplen--;
	if (asprintf(&url, "%.*s/v1/%s:access", (int)eplen, ep, name) < 0) {
		log_error("See Tickets API key from %s: out of memory", what);
		return -ENOMEM;
	}
	struct http_request req = {.method = "GET", .url = url, .secret_reply = true};
	r = gapi_call(g, http, &req, &resp, policy);
	if (r == 0)
		r = decode_payload(&resp, what, out, out_len);
	else if (!resp.body.data && !resp.error && r == -ECANCELED)
		;
	else if (!resp.body.data && !resp.error)
		/* No token, so nothing was sent; gauth has logged why. */
		log_error("See Tickets API key from %s: no Google access token (%s)", what,
		          gauth_describe(g));
	else
		r = sm_failure(r, &resp, g, what);
	if (resp.body.data)
		util_wipe(resp.body.data, resp.body.len);
	http_response_free(&resp);
	free(url);
	return r;
}

int secret_load(const struct config *cfg, struct gauth *g, struct http_client *http,
                const struct http_policy *policy, struct secbuf **key)
{
	char what[512];
	unsigned char *raw = NULL;
	size_t n = 0, cap = 0;
	int r;

	*key = NULL;
	secret_describe(cfg, what, sizeof(what));
	switch (cfg->seetickets.key_source) {
	case CONFIG_KEY_SECRET:
		r = load_secret_manager(cfg, g, http, policy, what, &raw, &n);
		cap = n + 1;
		break;
	case CONFIG_KEY_FILE:
		r = read_key_file(cfg->seetickets.key_ref, what, true, &raw, &n);
		cap = SECRET_MAX_BYTES + 1;
		break;
	case CONFIG_KEY_CREDENTIAL:
		r = load_credential(cfg, what, &raw, &n);
		cap = SECRET_MAX_BYTES + 1;
		break;
	default:
		log_error("See Tickets API key: no key source configured");
		return -EINVAL;
	}
	if (r < 0)
		return r;

	/* A key pasted with an editor or `echo` ends in "\n" or "\r\n". */
	static const char space[] = " \t\r\n\v\f";
	size_t start = 0, end = n;
	while (start < end && raw[start] && strchr(space, raw[start]))
		start++;
	while (end > start && raw[end - 1] && strchr(space, raw[end - 1]))
		end--;
	if (end == start) {
		log_error("See Tickets API key from %s is empty", what);
		r = -EINVAL;
	} else if (memchr(raw + start, '\0', end - start) ||
	           memchr(raw + start, '\n', end - start) ||
	           memchr(raw + start, '\r', end - start)) {
		/* It goes into a header: a NUL or a second line would corrupt the request. */
		log_error("See Tickets API key from %s has more than one line or a NUL byte; "
		          "expected the key alone",
		          what);
		r = -EINVAL;
	} else {
		*key = secbuf_new(raw + start, end - start);
		if (!*key) {
			log_error("See Tickets API key from %s: out of memory", what);
			r = -ENOMEM;
		} else {
			log_debug("See Tickets API key loaded from %s (%zu bytes)", what,
			          end - start);
		}
	}
	free_wiped(raw, cap);
	return r;
}
