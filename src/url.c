/* url.c - the URL policy (https everywhere, plain http only to loopback) and small helpers. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

#define URL_HOST_MAX 255 /* DNS names are at most 253 octets; IPv6 literals far less */

/* The parts of "scheme://authority..." the policy looks at. Pointers into the URL. */
struct url_parts {
	const char *scheme;
	size_t scheme_len;
	const char *host; /* without brackets */
	size_t host_len;
	bool bracketed; /* host was an [IPv6] literal */
};

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool valid_port(const char *p, size_t len)
{
	if (len == 0 || len > 5)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(p[i]))
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

static bool valid_reg_name(const char *h, size_t len)
{
	if (len == 0 || len > URL_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alpha(h[i]) && !is_digit(h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_')
			return false;
	return true;
}

/* Split off scheme and host. Userinfo ("user@host") is refused outright: it
 * has no use here and "http://127.0.0.1@evil.example" is the classic way to
 * make a URL look loopback while it is not. */
static int url_split(const char *url, struct url_parts *p)
{
	if (!url)
		return -EINVAL;
	for (const char *s = url; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return -EINVAL;
	const char *sep = strstr(url, "://");
	if (!sep || sep == url)
		return -EINVAL;
	for (const char *s = url; s < sep; s++)
		if (!is_alpha(*s) && !(s > url && (is_digit(*s) || strchr("+-.", *s))))
			return -EINVAL;
	p->scheme = url;
	p->scheme_len = (size_t)(sep - url);

	const char *auth = sep + 3;
	size_t auth_len = strcspn(auth, "/?#");
	if (memchr(auth, '@', auth_len))
		return -EINVAL;
	const char *port = NULL;
	size_t port_len = 0;
	if (auth_len > 0 && auth[0] == '[') {
		const char *close = memchr(auth, ']', auth_len);
		if (!close)
			return -EINVAL;
		p->host = auth + 1;
		p->host_len = (size_t)(close - auth - 1);
		p->bracketed = true;
		const char *rest = close + 1;
		size_t rest_len = auth_len - (size_t)(rest - auth);
		if (rest_len > 0) {
			if (rest[0] != ':')
				return -EINVAL;
			port = rest + 1;
			port_len = rest_len - 1;
		}
		char tmp[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		if (p->host_len == 0 || p->host_len >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, p->host, p->host_len);
		tmp[p->host_len] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
	} else {
		const char *colon = memchr(auth, ':', auth_len);
		p->host = auth;
		p->host_len = colon ? (size_t)(colon - auth) : auth_len;
		p->bracketed = false;
		if (colon) {
			port = colon + 1;
			port_len = auth_len - p->host_len - 1;
		}
		if (!valid_reg_name(p->host, p->host_len))
			return -EINVAL;
	}
	if (port && !valid_port(port, port_len))
		return -EINVAL;
	return 0;
}

bool url_host_is_loopback(const char *host)
{
	if (!host)
		return false;
	/* Only the exact name: "localhost.example.com" or "*.localhost" resolve
	 * wherever the resolver says, which is not a promise of loopback. */
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	struct in6_addr a6;
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			return a6.s6_addr[12] == 127;
	}
	return false;
}

static bool host_chars(const char *s, size_t len, const char *extra)
{
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || (ch && strchr(extra, ch)))
			continue;
		return false;
	}
	return true;
}

static bool port_ok(const char *p)
{
	char *end;
	if (!*p || *p < '0' || *p > '9' || strlen(p) > 5)
		return false;
	long v = strtol(p, &end, 10);
	return !*end && v >= 1 && v <= 65535;
}

bool url_is_host_port(const char *v)
{
	const char *port = NULL;
	if (!v)
		return false;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || close == v + 1 || !host_chars(v + 1, (size_t)(close - v - 1), ":."))
			return false;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return false;
	} else {
		size_t host_len = strcspn(v, ":");
		if (host_len == 0 || !host_chars(v, host_len, ".-_"))
			return false;
		if (v[host_len] == ':')
			port = v + host_len + 1;
	}
	return !port || port_ok(port);
}

bool url_allowed(const char *url)
{
	struct url_parts p;
	if (url_split(url, &p) < 0)
		return false;
	if (p.scheme_len == 5 && strncasecmp(p.scheme, "https", 5) == 0)
		return true;
	if (p.scheme_len != 4 || strncasecmp(p.scheme, "http", 4) != 0)
		return false;
	char host[URL_HOST_MAX + 1];
	memcpy(host, p.host, p.host_len);
	host[p.host_len] = '\0';
	return url_host_is_loopback(host);
}

int url_host(const char *url, char *buf, size_t len)
{
	struct url_parts p;
	int r = url_split(url, &p);
	if (r < 0)
		return r;
	if (!buf || p.host_len >= len)
		return -ERANGE;
	memcpy(buf, p.host, p.host_len);
	buf[p.host_len] = '\0';
	return 0;
}

char *url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!s)
		return NULL;
	size_t n = strlen(s);
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	char *o = out;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (is_alpha((char)*c) || is_digit((char)*c) || strchr("-._~", *c)) {
			*o++ = (char)*c;
		} else {
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 0x0f];
		}
	}
	*o = '\0';
	return out;
}
