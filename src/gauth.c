/* gauth.c - Google access tokens: metadata server, service-account JWT, authorized_user. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "codec.h"
#include "gapi.h"
#include "gauth.h"
#include "log.h"
#include "url.h"
#include "util.h"

#define GAUTH_DEFAULT_EXPIRES_S 3600 /* a reply without expires_in: assume Google's usual hour */
#define GAUTH_MAX_TOKEN_LEN     8192 /* Google tokens are a few hundred bytes */
#define GAUTH_RETRY_HOLD_MS     10000 /* while the old token lasts, retry a failed refresh this often */
#define GAUTH_ADC_FILE          "application_default_credentials.json"
#define GAUTH_JWT_GRANT         "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define GAUTH_METADATA_PATH                                                                        \
	"/computeMetadata/v1/instance/service-accounts/default/token?scopes="                      \
	"https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"

enum gauth_kind {
	GAUTH_METADATA,
	GAUTH_SERVICE_ACCOUNT,
	GAUTH_AUTHORIZED_USER,
};

struct gauth {
	enum gauth_kind kind;
	bool adc_fallback; /* metadata reached only because "auto" found no key file */
	bool ever_got;     /* a token arrived once: the source exists */
	char *describe;
	char *metadata_host;
	char *metadata_url;
	char *token_uri;
	char *client_email;
	char *key_id;
	char *client_id;
	struct secbuf *private_key;
	struct secbuf *client_secret;
	struct secbuf *refresh_token;
	struct http_client *http;
	const struct http_policy *policy;

	struct secbuf *token;
	uint64_t obtained_ms, expiry_ms; /* util_now_ms() clock: immune to wall-clock steps */
	uint64_t hold_until_ms;
};

/* ---- pure parts ------------------------------------------------------------------------ */

bool gauth_refresh_due(uint64_t now_ms, uint64_t expiry_ms, uint64_t obtained_ms)
{
	if (now_ms >= expiry_ms)
		return true;
	uint64_t remaining = expiry_ms - now_ms;
	uint64_t life = expiry_ms > obtained_ms ? expiry_ms - obtained_ms : 0;
	uint64_t margin = (uint64_t)GAUTH_REFRESH_MARGIN_S * 1000;
	/* A token handed out with less life than the margin (the metadata server
	 * serves its cached token with whatever is left) would otherwise be
	 * "due" at once and refetched on every call. */
	if (life <= margin)
		return remaining <= life / 2;
	return remaining < margin;
}

/* OpenSSL's default would prompt on the terminal for an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static EVP_PKEY *load_private_key(const struct secbuf *pem, char *err, size_t len)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = BIO_new_mem_buf(secbuf_expose(pem), (int)secbuf_len(pem));
	if (bio)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	/* The queued OpenSSL errors describe the key; nobody else should read them. */
	ERR_clear_error();
	if (!pkey) {
		snprintf(err, len, "private_key is not an unencrypted PEM private key");
		return NULL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		snprintf(err, len, "private_key is not an RSA key (RS256 needs one)");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static char *json_b64url(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	if (!s)
		return NULL;
	char *e = codec_base64url_encode(s, strlen(s));
	free(s);
	return e;
}

int gauth_jwt_build(const char *client_email, const char *key_id, const char *aud,
                    const struct secbuf *pem, int64_t now_s, struct secbuf **jwt, char *err,
                    size_t len)
{
	json_t *header = NULL, *claims = NULL;
	char *h64 = NULL, *c64 = NULL, *s64 = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	struct buf out = {0};
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	int r = -ENOMEM;

	*jwt = NULL;
	if (!client_email || !aud || !pem) {
		snprintf(err, len, "client_email, audience and private key are required");
		return -EINVAL;
	}
	header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	if (header && key_id && *key_id && json_object_set_new(header, "kid", json_string(key_id)))
		goto out;
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", client_email, "scope", GAUTH_SCOPE,
	                   "aud", aud, "iat", (json_int_t)now_s, "exp",
	                   (json_int_t)(now_s + GAUTH_JWT_LIFETIME_S));
	if (!header || !claims)
		goto out;
	h64 = json_b64url(header);
	c64 = json_b64url(claims);
	if (!h64 || !c64 || buf_printf(&out, "%s.%s", h64, c64) < 0)
		goto out;

	pkey = load_private_key(pem, err, len);
	if (!pkey) {
		r = -EINVAL;
		goto out;
	}
	/* Sized from the key: RSA-3072/4096 keys give longer signatures than 256 bytes. */
	int max = EVP_PKEY_get_size(pkey);
	md = EVP_MD_CTX_new();
	sig = max > 0 ? malloc((size_t)max) : NULL;
	if (!md || !sig)
		goto out;
	sig_len = (size_t)max;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)out.data, out.len) != 1) {
		ERR_clear_error();
		snprintf(err, len, "signing the JWT with private_key failed");
		r = -EINVAL;
		goto out;
	}
	s64 = codec_base64url_encode(sig, sig_len);
	if (!s64 || buf_printf(&out, ".%s", s64) < 0)
		goto out;
	*jwt = secbuf_new(out.data, out.len);
	r = *jwt ? 0 : -ENOMEM;
out:
	if (r == -ENOMEM)
		snprintf(err, len, "out of memory");
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	free(sig);
	if (s64)
		util_wipe(s64, strlen(s64));
	free(s64);
	free(h64);
	free(c64);
	if (out.data)
		util_wipe(out.data, out.cap);
	buf_free(&out);
	json_decref(header);
	json_decref(claims);
	return r;
}

/* jansson keeps its own copy of every string: blank the secret ones before
 * the tree is freed. */
static void wipe_json_string(json_t *v)
{
	if (json_is_string(v))
		util_wipe((char *)json_string_value(v), json_string_length(v));
}

/* Tokens travel in a header line: anything but visible ASCII would let a
 * hostile reply inject header lines. */
static bool token_chars_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int parse_expires(json_t *v, long *out)
{
	if (!v) {
		*out = GAUTH_DEFAULT_EXPIRES_S;
		return 0;
	}
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i <= 0 || i > 10L * 365 * 86400)
			return -EINVAL;
		*out = (long)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!(d >= 1 && d <= 10.0 * 365 * 86400))
			return -EINVAL;
		*out = (long)d;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
			return -EINVAL;
		long l = strtol(s, NULL, 10);
		if (l <= 0)
			return -EINVAL;
		*out = l;
		return 0;
	}
	return -EINVAL;
}

int gauth_parse_token_reply(const char *body, size_t body_len, struct secbuf **token,
                            long *expires_in_s, char *err, size_t len)
{
	json_error_t je;
	int r = -EINVAL;

	*token = NULL;
	gapi_json_secret_begin();
	json_t *root = body ? json_loadb(body, body_len, 0, &je) : NULL;
	if (!root || !json_is_object(root)) {
		snprintf(err, len, "the token reply is not a JSON object");
		goto out;
	}
	json_t *at = json_object_get(root, "access_token");
	json_t *tt = json_object_get(root, "token_type");
	if (!json_is_string(at) || json_string_length(at) == 0) {
		snprintf(err, len, "the token reply has no access_token");
		goto out;
	}
	if (json_string_length(at) > GAUTH_MAX_TOKEN_LEN ||
	    !token_chars_ok(json_string_value(at), json_string_length(at))) {
		snprintf(err, len, "the token reply's access_token is malformed");
		goto out;
	}
	if (tt && (!json_is_string(tt) || strcasecmp(json_string_value(tt), "Bearer") != 0)) {
		snprintf(err, len, "the token reply's token_type is not Bearer");
		goto out;
	}
	if (parse_expires(json_object_get(root, "expires_in"), expires_in_s) < 0) {
		snprintf(err, len,
		         "the token reply's expires_in is not a positive number of seconds");
		goto out;
	}
	*token = secbuf_new(json_string_value(at), json_string_length(at));
	if (!*token) {
		snprintf(err, len, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	r = 0;
out:
	if (root)
		wipe_json_string(json_object_get(root, "access_token"));
	json_decref(root);
	gapi_json_secret_end();
	return r;
}

/* ---- loading credentials --------------------------------------------------------------- */

static const char *json_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static struct secbuf *json_secret(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v) || json_string_length(v) == 0)
		return NULL;
	return secbuf_new(json_string_value(v), json_string_length(v));
}

/* The first required string field that is missing, or NULL. */
static const char *missing_field(json_t *obj, const char *const *fields)
{
	for (; *fields; fields++)
		if (!json_str(obj, *fields))
			return *fields;
	return NULL;
}

static int load_service_account(struct gauth *g, json_t *root, const char *path, char *err,
                                size_t len)
{
	static const char *const required[] = {"client_email", "private_key", NULL};
	const char *missing = missing_field(root, required);
	if (missing) {
		snprintf(err, len, "credentials file %s: field \"%s\" is missing or empty", path,
		         missing);
		return -EINVAL;
	}
	const char *uri = json_str(root, "token_uri");
	if (json_object_get(root, "token_uri") && !uri) {
		snprintf(err, len, "credentials file %s: field \"token_uri\" is not a string",
		         path);
		return -EINVAL;
	}
	g->kind = GAUTH_SERVICE_ACCOUNT;
	g->client_email = strdup(json_str(root, "client_email"));
	g->key_id = util_strdup_or_null(json_str(root, "private_key_id"));
	g->token_uri = strdup(uri ? uri : GAUTH_DEFAULT_TOKEN_URI);
	g->private_key = json_secret(root, "private_key");
	if (!g->client_email || !g->token_uri || !g->private_key) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	/* A bad key should stop the start-up, not the first refresh an hour later. */
	char why[128];
	EVP_PKEY *pkey = load_private_key(g->private_key, why, sizeof(why));
	if (!pkey) {
		snprintf(err, len, "credentials file %s: %s", path, why);
		return -EINVAL;
	}
	EVP_PKEY_free(pkey);
	if (asprintf(&g->describe, "service account %s (file %s)", g->client_email, path) < 0) {
		g->describe = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int load_authorized_user(struct gauth *g, json_t *root, const char *path, char *err,
                                size_t len)
{
	static const char *const required[] = {"client_id", "client_secret", "refresh_token", NULL};
	const char *missing = missing_field(root, required);
	if (missing) {
		snprintf(err, len, "credentials file %s: field \"%s\" is missing or empty", path,
		         missing);
		return -EINVAL;
	}
	const char *uri = json_str(root, "token_uri");
	g->kind = GAUTH_AUTHORIZED_USER;
	g->client_id = strdup(json_str(root, "client_id"));
	g->token_uri = strdup(uri ? uri : GAUTH_DEFAULT_TOKEN_URI);
	g->client_secret = json_secret(root, "client_secret");
	g->refresh_token = json_secret(root, "refresh_token");
	if (!g->client_id || !g->token_uri || !g->client_secret || !g->refresh_token) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	if (asprintf(&g->describe, "authorized user (file %s)", path) < 0) {
		g->describe = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Into one buffer of the maximum size: a buffer grown by realloc would leave
 * copies of the private key behind in freed memory. */
static int read_key_file(const char *path, char **out, size_t *out_len, char *why, size_t len)
{
	size_t n = 0;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* A service-account key is as secret as the API key. */
	if ((r = util_check_private_file(fd, path, why, len)) < 0) {
		close(fd);
		return r;
	}
	char *data = malloc(GAUTH_MAX_KEY_FILE + 1);
	if (!data) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t k = read(fd, data + n, GAUTH_MAX_KEY_FILE + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > GAUTH_MAX_KEY_FILE) {
			r = -EFBIG;
			break;
		}
	}
	close(fd);
	if (r < 0) {
		util_wipe(data, GAUTH_MAX_KEY_FILE + 1);
		free(data);
		return r;
	}
	data[n] = '\0';
	*out = data;
	*out_len = n;
	return 0;
}

static int load_key_file(struct gauth *g, const char *path, const char *origin, char *err,
                         size_t len)
{
	char *data = NULL;
	size_t n = 0;
	json_error_t je;
	json_t *root = NULL;
	char why[PATH_MAX + 160];
	int r = read_key_file(path, &data, &n, why, sizeof(why));
	if (r < 0) {
		snprintf(err, len, "credentials file %s%s: %s", path, origin,
		         r == -EFBIG   ? "larger than 64 KiB, not a key file"
		         : r == -EPERM ? why
		                       : strerror(-r));
		return r;
	}
	gapi_json_secret_begin();
	root = json_loadb(data, n, 0, &je);
	util_wipe(data, GAUTH_MAX_KEY_FILE + 1);
	free(data);
	if (!root || !json_is_object(root)) {
		/* Only the position: jansson's message quotes the text near the error. */
		if (root)
			snprintf(err, len, "credentials file %s%s: not a JSON object", path,
			         origin);
		else
			snprintf(err, len,
			         "credentials file %s%s: invalid JSON at line %d column %d", path,
			         origin, je.line, je.column);
		r = -EINVAL;
		goto out;
	}
	const char *type = json_str(root, "type");
	if (!type) {
		snprintf(err, len, "credentials file %s%s: field \"type\" is missing or empty",
		         path, origin);
		r = -EINVAL;
	} else if (strcmp(type, "service_account") == 0) {
		r = load_service_account(g, root, path, err, len);
	} else if (strcmp(type, "authorized_user") == 0) {
		r = load_authorized_user(g, root, path, err, len);
	} else {
		snprintf(err, len,
		         "credentials file %s%s: type \"%.40s\" is not supported (use a "
		         "service_account key, an authorized_user file, or \"metadata\")",
		         path, origin, type);
		r = -EINVAL;
	}
	if (r == 0 && !url_allowed(g->token_uri)) {
		snprintf(
		        err, len,
		        "credentials file %s%s: token_uri must be an https:// URL (plain http only "
		        "to loopback)",
		        path, origin);
		r = -EINVAL;
	}
out:
	if (root) {
		static const char *const secrets[] = {"private_key", "client_secret",
		                                      "refresh_token"};
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(secrets); i++)
			wipe_json_string(json_object_get(root, secrets[i]));
	}
	json_decref(root);
	gapi_json_secret_end();
	return r;
}

static int setup_metadata(struct gauth *g, const struct gauth_options *o, bool fallback, char *err,
                          size_t len)
{
	const char *env = getenv("GCE_METADATA_HOST");
	const char *host = env && *env                             ? env
	                   : o->metadata_host && *o->metadata_host ? o->metadata_host
	                                                           : GAUTH_METADATA_HOST;
	/* Accept "http://host:port/" too: people paste URLs. */
	if (util_str_has_prefix(host, "http://"))
		host += strlen("http://");
	g->metadata_host = strndup(host, strcspn(host, "/"));
	if (!g->metadata_host)
		return -ENOMEM;
	/* The token travels in clear to this host: hold the environment to the
	 * rules of the configuration's metadata_host. */
	const char *rest = host + strcspn(host, "/");
	if (!url_is_host_port(g->metadata_host) || (rest[0] && rest[1])) {
		snprintf(err, len, "%s: must be HOST or HOST:PORT (no path, user or query)",
		         env && *env ? "GCE_METADATA_HOST" : "metadata_host");
		return -EINVAL;
	}
	g->kind = GAUTH_METADATA;
	g->adc_fallback = fallback;
	if (asprintf(&g->metadata_url, "http://%s%s", g->metadata_host, GAUTH_METADATA_PATH) < 0) {
		g->metadata_url = NULL;
		return -ENOMEM;
	}
	if (asprintf(&g->describe, "metadata server %s", g->metadata_host) < 0) {
		g->describe = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* gcloud's well-known file, or NULL (malloc'd path). */
static char *adc_well_known_path(void)
{
	const char *dir = getenv("CLOUDSDK_CONFIG");
	char *p = NULL;
	if (dir && *dir) {
		if (asprintf(&p, "%s/%s", dir, GAUTH_ADC_FILE) < 0)
			return NULL;
	} else {
		const char *home = getenv("HOME");
		if (!home || !*home)
			return NULL;
		if (asprintf(&p, "%s/.config/gcloud/%s", home, GAUTH_ADC_FILE) < 0)
			return NULL;
	}
	return p;
}

struct gauth *gauth_new(const struct gauth_options *o, char *err, size_t len)
{
	struct gauth *g = calloc(1, sizeof(*g));
	const char *cred = o->credentials && *o->credentials ? o->credentials : "auto";
	int r;

	if (!g) {
		snprintf(err, len, "out of memory");
		return NULL;
	}
	g->http = o->http;
	g->policy = o->policy;

	if (strcmp(cred, "metadata") == 0) {
		r = setup_metadata(g, o, false, err, len);
	} else if (strcmp(cred, "auto") != 0) {
		r = load_key_file(g, cred, "", err, len);
	} else {
		const char *gac = getenv("GOOGLE_APPLICATION_CREDENTIALS");
		char *well_known = NULL;
		if (gac && *gac) {
			/* Set but unusable is an error, as in Google's libraries: falling
			 * through to another identity would be a surprise. */
			r = load_key_file(g, gac, " (from GOOGLE_APPLICATION_CREDENTIALS)", err,
			                  len);
		} else if ((well_known = adc_well_known_path()) && access(well_known, F_OK) == 0) {
			r = load_key_file(g, well_known, "", err, len);
		} else {
			r = setup_metadata(g, o, true, err, len);
		}
		free(well_known);
	}
	if (r == -ENOMEM)
		snprintf(err, len, "out of memory");
	if (r < 0) {
		gauth_free(g);
		return NULL;
	}
	return g;
}

void gauth_free(struct gauth *g)
{
	if (!g)
		return;
	secbuf_free(g->token);
	secbuf_free(g->private_key);
	secbuf_free(g->client_secret);
	secbuf_free(g->refresh_token);
	free(g->describe);
	free(g->metadata_host);
	free(g->metadata_url);
	free(g->token_uri);
	free(g->client_email);
	free(g->key_id);
	free(g->client_id);
	free(g);
}

const char *gauth_describe(const struct gauth *g)
{
	return g && g->describe ? g->describe : "no Google credentials";
}

void gauth_invalidate(struct gauth *g)
{
	if (!g)
		return;
	secbuf_free(g->token);
	g->token = NULL;
	g->hold_until_ms = 0;
}

/* ---- fetching tokens ------------------------------------------------------------------- */

static bool oauth_transient(const char *error)
{
	return error &&
	       (strcmp(error, "internal_failure") == 0 || strcmp(error, "server_error") == 0 ||
	        strcmp(error, "temporarily_unavailable") == 0);
}

/* The http classifier knows API reasons, not OAuth error codes: present the
 * OAuth ones that mean "try again" as the API reason with that meaning, so
 * that the retry policy covers them like any 5xx. */
static const char *token_reason(const struct http_response *resp, char *buf, size_t len)
{
	const char *r = gapi_error_reason(resp, buf, len);
	return oauth_transient(r) ? "backendError" : r;
}

/* error_description of an OAuth error body, made safe for a log line. */
static void oauth_description(const struct http_response *resp, char *out, size_t len)
{
	json_t *root =
	        resp->body.data ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
	const char *d = json_is_object(root) ? json_str(root, "error_description") : NULL;
	if (d) {
		log_scrub_copy(d, out, len); /* scrubbed, then cut */
	} else {
		gapi_error_message(resp, out, len);
	}
	json_decref(root);
}

static void wipe_response(struct http_response *resp)
{
	if (resp->body.data)
		util_wipe(resp->body.data, resp->body.len);
	http_response_free(resp);
}

/* POST a form (secret: the JWT or the refresh token is in it) to token_uri. */
static int post_form(struct gauth *g, const struct codec_form_field *f, size_t n,
                     struct http_response *resp)
{
	size_t len = 0;
	char *raw = codec_form_encode(f, n, &len);
	if (!raw)
		return -ENOMEM;
	/* Registered as a live secret, so even an accidental log line is blanked. */
	struct secbuf *body = secbuf_new(raw, len);
	util_wipe(raw, len);
	free(raw);
	if (!body)
		return -ENOMEM;
	struct http_request req = {
	        .method = "POST",
	        .url = g->token_uri,
	        .body = (const char *)secbuf_expose(body),
	        .body_len = secbuf_len(body),
	        .content_type = "application/x-www-form-urlencoded",
	        .secret_reply = true,
	};
	int r = http_send(g->http, &req, resp, g->policy, token_reason);
	secbuf_free(body);
	return r;
}

static int request_service_account(struct gauth *g, struct http_response *resp)
{
	char why[160];
	struct secbuf *jwt = NULL;
	/* A new JWT every time: its iat/exp must be current. Its audience is Google's token
	 * endpoint (GAUTH_JWT_AUDIENCE), not token_uri: Google refuses any other `aud`, and
	 * google-auth signs the same fixed value; the JWT is still POSTed to token_uri. */
	int r = gauth_jwt_build(g->client_email, g->key_id, GAUTH_JWT_AUDIENCE, g->private_key,
	                        util_wall_s(), &jwt, why, sizeof(why));
	if (r < 0) {
		log_error("%s: cannot build the token request: %s", g->describe, why);
		return r == -ENOMEM ? -ENOMEM : -EACCES;
	}
	struct codec_form_field f[] = {
	        {"grant_type", GAUTH_JWT_GRANT, strlen(GAUTH_JWT_GRANT)},
	        {"assertion", secbuf_expose(jwt), secbuf_len(jwt)},
	};
	r = post_form(g, f, UTIL_ARRAY_SIZE(f), resp);
	secbuf_free(jwt);
	return r;
}

static int request_authorized_user(struct gauth *g, struct http_response *resp)
{
	struct codec_form_field f[] = {
	        {"grant_type", "refresh_token", strlen("refresh_token")},
	        {"client_id", g->client_id, strlen(g->client_id)},
	        {"client_secret", secbuf_expose(g->client_secret), secbuf_len(g->client_secret)},
	        {"refresh_token", secbuf_expose(g->refresh_token), secbuf_len(g->refresh_token)},
	};
	return post_form(g, f, UTIL_ARRAY_SIZE(f), resp);
}

static int request_metadata(struct gauth *g, struct http_response *resp)
{
	static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
	struct http_request req = {
	        .method = "GET",
	        .url = g->metadata_url,
	        .headers = headers,
	        .timeout_s = GAUTH_METADATA_TIMEOUT_S,
	        /* The metadata server speaks only plain http, on the VM itself. */
	        .plain_http = true,
	        .no_proxy = true,
	        .secret_reply = true,
	};
	return http_send(g->http, &req, resp, g->policy, token_reason);
}

/* Turn a failed token request into the module's codes, logging why. */
static int token_failure(struct gauth *g, int r, const struct http_response *resp)
{
	char reason[64], desc[256];
	const char *error = gapi_error_reason(resp, reason, sizeof(reason));

	if (r == -ECANCELED)
		return r;
	if (resp->status == 0) {
		bool unreachable = resp->error == -ECONNREFUSED || resp->error == -EHOSTUNREACH;
		if (g->kind == GAUTH_METADATA && g->adc_fallback && unreachable && !g->ever_got) {
			char *wk = adc_well_known_path();
			log_error("no Google credentials found: GOOGLE_APPLICATION_CREDENTIALS is "
			          "unset, %s does not exist, and the metadata server %s did not "
			          "answer (%s); set google.credentials to a key file or run on GCE",
			          wk ? wk : "gcloud's application_default_credentials.json",
			          g->metadata_host, resp->errmsg);
			free(wk);
			return -EACCES;
		}
		if (resp->error == -EPERM || resp->error == -EACCES) {
			log_error("%s: token request refused before sending: %s", g->describe,
			          resp->errmsg);
			return -EACCES;
		}
		log_warning("%s: token request failed: %s", g->describe, resp->errmsg);
		return -EAGAIN;
	}
	oauth_description(resp, desc, sizeof(desc));
	if (r == -EAGAIN || oauth_transient(error) || resp->status == 408 || resp->status == 429 ||
	    resp->status >= 500) {
		log_warning("%s: token request failed for now: HTTP %ld%s%s: %s", g->describe,
		            resp->status, error ? " " : "", error ? error : "", desc);
		return -EAGAIN;
	}
	const char *hint = "";
	if (strstr(desc, "short-lived token") || strstr(desc, "reasonable timeframe"))
		hint = "; the JWT's iat/exp come from this machine's clock: check that it is "
		       "synchronised (timedatectl, chrony)";
	else if (error && strcmp(error, "invalid_grant") == 0)
		hint = "; the key or refresh token was revoked, deleted or belongs to another "
		       "account";
	else if (g->kind == GAUTH_METADATA && resp->status == 404)
		hint = "; is a service account attached to this VM?";
	log_error("%s: token request refused: HTTP %ld%s%s: %s%s", g->describe, resp->status,
	          error ? " " : "", error ? error : "", desc, hint);
	return -EACCES;
}

static int fetch_token(struct gauth *g, struct secbuf **tok, long *life)
{
	struct http_response resp = {0};
	char why[160], flavor[32];
	int r;

	switch (g->kind) {
	case GAUTH_SERVICE_ACCOUNT:
		r = request_service_account(g, &resp);
		break;
	case GAUTH_AUTHORIZED_USER:
		r = request_authorized_user(g, &resp);
		break;
	case GAUTH_METADATA:
	default:
		r = request_metadata(g, &resp);
		break;
	}
	if (r == -ENOMEM) {
		log_error("%s: out of memory", g->describe);
		r = -EAGAIN;
		goto out;
	}
	if (r < 0) {
		r = token_failure(g, r, &resp);
		goto out;
	}
	if (g->kind == GAUTH_METADATA &&
	    (!http_response_header(&resp, "Metadata-Flavor", flavor, sizeof(flavor)) ||
	     strcasecmp(flavor, "Google") != 0)) {
		log_error("%s: the answer lacks \"Metadata-Flavor: Google\": this is not a GCE "
		          "metadata server",
		          g->describe);
		r = -EACCES;
		goto out;
	}
	r = gauth_parse_token_reply(resp.body.data, resp.body.len, tok, life, why, sizeof(why));
	if (r < 0) {
		/* A garbled 200 is most likely a proxy or a cut connection. */
		log_warning("%s: %s", g->describe, why);
		r = -EAGAIN;
	}
out:
	wipe_response(&resp);
	return r;
}

int gauth_token(struct gauth *g, const struct secbuf **token)
{
	uint64_t now = util_now_ms();
	struct secbuf *fresh = NULL;
	long life = 0;

	*token = NULL;
	if (!g)
		return -EINVAL;
	if (g->token && !gauth_refresh_due(now, g->expiry_ms, g->obtained_ms)) {
		*token = g->token;
		return 0;
	}
	bool old_valid = g->token && now < g->expiry_ms;
	if (old_valid && now < g->hold_until_ms) {
		*token = g->token;
		return 0;
	}
	int r = fetch_token(g, &fresh, &life);
	if (r == 0) {
		secbuf_free(g->token);
		g->token = fresh;
		/* Counted from the request's start, so the expiry errs on the early side. */
		g->obtained_ms = now;
		g->expiry_ms = now + (uint64_t)life * 1000;
		g->hold_until_ms = 0;
		g->ever_got = true;
		log_debug("%s: new access token, valid for %ld s", g->describe, life);
		*token = g->token;
		return 0;
	}
	now = util_now_ms();
	if (r != -ECANCELED && g->token && now < g->expiry_ms) {
		uint64_t left = g->expiry_ms - now;
		g->hold_until_ms =
		        now + (left / 2 < GAUTH_RETRY_HOLD_MS ? left / 2 : GAUTH_RETRY_HOLD_MS);
		log_warning("%s: token refresh failed; the current token stays in use (%" PRIu64
		            " s left)",
		            g->describe, left / 1000);
		*token = g->token;
		return 0;
	}
	return r;
}
