/* jscan.h - a structural JSON scanner: finds where values begin and end in
 * a reply without building a tree and without allocating.
 *
 * Most of what the daemon reads is thrown away or needs one field (a known
 * sale's key, a seeding row's values), and a jansson tree costs 70 to 200
 * bytes and a malloc per value. The scanner matches brackets and strings;
 * it does not read scalars, so jansson stays the judge of anything kept
 * that is not a plain string. */
#ifndef STBQ_JSCAN_H
#define STBQ_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define JSCAN_MAX_DEPTH 2048 /* as jansson: nesting beyond this is malformed */

struct jscan {
	const char *p, *end;
};

/* A character that ends a scalar (number, true, false, null). */
bool jscan_is_delim(char c);
/* Past JSON whitespace. */
void jscan_ws(struct jscan *s);
/* s->p at a string's opening quote: past its closing one. False if unclosed. */
bool jscan_skip_string(struct jscan *s);
/* Past an array element (s->p right after it): 1 and s->p at the next
 * element, 0 past the closing ']', -1 malformed. */
int jscan_after_element(struct jscan *s);
/* One value of any kind (after whitespace), containers matched bracket for
 * bracket; scalars are only delimited. False if malformed or too deep. */
bool jscan_skip_value(struct jscan *s);
/* s->p at a string's opening quote: when it is plain (no escape, no control
 * character, so jansson would read its bytes as they are, if they are valid
 * UTF-8), its contents' span and s->p past it. False otherwise. */
bool jscan_plain_string(struct jscan *s, const char **start, size_t *len);
/* Inside an object (s->p past its '{' for the `first` member, else past a
 * member's value): the next member's name, when plain, and s->p at its value.
 * 1 a member, 0 the end ('}' passed), -1 malformed or a name that is not
 * plain (the caller falls back to jansson). */
int jscan_member(struct jscan *s, bool first, const char **name, size_t *nlen);
/* The object's top-level member `name` when its value is a plain string of
 * valid UTF-8 (what jansson would read byte for byte); the last member of
 * that name wins, as in jansson. False for anything else, a member name
 * with escapes included: the caller then asks jansson. */
bool jscan_plain_member(const char *obj, size_t len, const char *name, const char **value,
                        size_t *vlen);
/* The same while scanning: the object at s->p (after whitespace) is passed,
 * s->p after it, and *found says whether `name` is a plain string there.
 * False when what is there is not one well-formed object with plain member
 * names (s->p then unspecified). One pass where skip and look-up take two. */
bool jscan_object_member(struct jscan *s, const char *name, const char **value, size_t *vlen,
                         bool *found);
/* True only if jansson would read s..s+len as one JSON object: strict
 * grammar, valid UTF-8, no control characters in strings. Conservative: a
 * \u escape, a number with an exponent, an integer of more than 18 digits,
 * or nesting deeper than JSCAN_VALIDATE_DEPTH give false, and the caller
 * asks jansson. No allocation. */
bool jscan_valid_object(const char *s, size_t len);
#define JSCAN_VALIDATE_DEPTH 64

/* The whole of body..body+len is one well-formed object (structurally); the
 * span of its top-level member `name` (the last one, as in jansson; names
 * with escapes decoded by jansson), or NULL, NULL when absent. */
bool jscan_find_member(const char *body, size_t len, const char *name, const char **vs,
                       const char **ve);

/* The same in one pass: instead of being skipped, the value of each member
 * `name` is handed to visit() at s->p (after whitespace, not at the end),
 * which must take s->p past it, as jscan_skip_value() would, or return
 * false to stop (the result is then false). visit() runs once per member of
 * that name: the last run is what jansson would keep. */
bool jscan_visit_member(const char *body, size_t len, const char *name,
                        bool (*visit)(struct jscan *s, void *ud), void *ud);

/* The \u escape at text ("\u00e9", or a surrogate pair "\ud83d\ude00") as
 * jansson decodes it: its code point and *len (6 or 12), or -1 for what
 * jansson refuses (U+0000, which it takes only with JSON_ALLOW_NUL, so
 * refusing is right either way; a lone or unpaired surrogate; not hex). */
long jscan_u_escape(const char *text, const char *end, size_t *len);

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
size_t jscan_utf8_seq(const unsigned char *s, size_t n);
bool jscan_utf8_valid(const char *s, size_t len);

#endif
