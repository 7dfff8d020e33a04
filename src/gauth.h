/* gauth.h - Google access tokens for the cloud-platform scope.
 *
 * Three sources, as Google's own libraries know them: the GCE metadata
 * server, a service-account JSON key (RS256 JWT for GAUTH_JWT_AUDIENCE, exchanged
 * at the file's token_uri) and gcloud's authorized_user file (refresh token). "auto"
 * follows the Application Default Credentials order. The token is cached,
 * refreshed ahead of expiry, and replaced only when a complete new one has
 * arrived. Every secret (private key, refresh token, client secret, JWT,
 * access token) lives in a struct secbuf. */
#ifndef STBQ_GAUTH_H
#define STBQ_GAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "secbuf.h"

#define GAUTH_SCOPE             "https://www.googleapis.com/auth/cloud-platform"
#define GAUTH_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
/* The `aud` of every service-account JWT, whatever token_uri the key file names: Google's
 * token endpoint checks the audience against its own name, and Google's client libraries
 * (google-auth's service_account.Credentials._make_authorization_grant_assertion) sign this
 * fixed value too. token_uri is only where the assertion is POSTed. */
#define GAUTH_JWT_AUDIENCE       "https://oauth2.googleapis.com/token"
#define GAUTH_METADATA_HOST      "metadata.google.internal"
#define GAUTH_REFRESH_MARGIN_S   225 /* refresh 3 min 45 s before expiry, as google-auth does */
#define GAUTH_JWT_LIFETIME_S     3600
#define GAUTH_MAX_KEY_FILE       (64 * 1024)
#define GAUTH_METADATA_TIMEOUT_S 10

struct gauth;

struct gauth_options {
	const char
	        *credentials; /* "auto", "metadata", or a JSON key file path (google.credentials) */
	const char *metadata_host; /* google.metadata_host; env GCE_METADATA_HOST wins when set */
	struct http_client *http;  /* borrowed */
	const struct http_policy *policy; /* retry policy for token requests, borrowed */
};

/* Resolve and load the credentials (no network yet). NULL and a reason in err
 * (naming the file and the missing field, never a secret). */
struct gauth *gauth_new(const struct gauth_options *o, char *err, size_t len);
void gauth_free(struct gauth *g); /* accepts NULL; wipes every secret */

/* A valid token for the cloud-platform scope, refreshed ahead of expiry. Borrowed: valid until
 * the next gauth_* call. 0 or negative errno (-EAGAIN transient, -EACCES refused, -ECANCELED).
 * Failures are logged here, naming the credential source. */
int gauth_token(struct gauth *g, const struct secbuf **token);
/* After an API 401: the cached token is dropped and the next gauth_token fetches anew. */
void gauth_invalidate(struct gauth *g);
/* "service account sa@p.iam.gserviceaccount.com (file /x.json)", "metadata server HOST",
 * "authorized user (file /x.json)". Borrowed, lives as long as g. */
const char *gauth_describe(const struct gauth *g);

/* ---- pure parts, exposed for the unit tests ---- */

/* Should a token obtained at `obtained_ms` and expiring at `expiry_ms` (same
 * clock as now_ms) be replaced now? Yes once less than GAUTH_REFRESH_MARGIN_S
 * remains; a token whose whole life is shorter than the margin is used for
 * the first half of it. An expired token is always due. */
bool gauth_refresh_due(uint64_t now_ms, uint64_t expiry_ms, uint64_t obtained_ms);

/* Build and sign the RS256 JWT bearer assertion. `pem` is the PEM private key.
 * 0 and a new secbuf in *jwt, or -EINVAL (bad key; reason in err) / -ENOMEM. */
int gauth_jwt_build(const char *client_email, const char *key_id, const char *aud,
                    const struct secbuf *pem, int64_t now_s, struct secbuf **jwt, char *err,
                    size_t len);

/* Parse a token endpoint / metadata reply body. 0, a new secbuf in *token and
 * the lifetime in *expires_in_s (a JSON number or a decimal string), or -EINVAL
 * with the reason in err (never the token). */
int gauth_parse_token_reply(const char *body, size_t body_len, struct secbuf **token,
                            long *expires_in_s, char *err, size_t len);

#endif
