package op

import (
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caps on authorization request parameters. /authorize stores nothing, but
// the sealed request travels in every sign-in URL and form, and a
// completed one is stored: nothing a client sends may make either large.
// Beyond a cap the client gets invalid_request (an error page when the
// whole request is too long to be trusted with a redirect).
const (
	maxAuthorizeQuery = 8 << 10 // the whole query string (or form body)
	maxState          = 2 << 10
)

var paramLimits = map[string]int{
	"state":                 maxState,
	"nonce":                 512,
	"login_hint":            320, // the longest valid email address
	"scope":                 2 << 10,
	"redirect_uri":          2 << 10,
	"client_id":             256,
	"code_challenge":        128,
	"code_challenge_method": 16,
	"response_type":         64,
	"response_mode":         32,
	"prompt":                64,
	"max_age":               16,
	"ui_locales":            256,
	"acr_values":            512,
	"display":               16,
	"id_token_hint":         4 << 10,
	"dpop_jkt":              64,
}

// oversizedParam returns the first parameter (in name order) longer than
// its cap, and the cap.
func oversizedParam(form url.Values) (string, int) {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		// zitadel's decoder matches names case-insensitively: NONCE is nonce.
		limit, ok := paramLimits[strings.ToLower(k)]
		if !ok {
			continue // unknown parameters are ignored, and bounded by the whole query
		}
		for _, v := range form[k] {
			if len(v) > limit {
				return k, limit
			}
		}
	}
	return "", 0
}

// badCharsParam returns a parameter whose name or value is not valid UTF-8
// or holds a control character, or "". No parameter has a use for either
// (state is printable ASCII, RFC 6749 Appendix A.5); invalid UTF-8 would be
// altered by the sealed request's JSON, and control characters would grow it
// sixfold (\u00XX).
func badCharsParam(form url.Values) string {
	bad := func(s string) bool {
		return !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0
	}
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if bad(k) {
			return "a parameter name"
		}
		for _, v := range form[k] {
			if bad(v) {
				return k
			}
		}
	}
	return ""
}

// multiValued are the parameters a request may repeat: RFC 8707 resource
// indicators.
var multiValued = map[string]bool{"resource": true}

// repeatedParam returns a parameter sent more than once (RFC 6749 §3.1,
// §3.2: "MUST NOT be included more than once"), client_id and redirect_uri
// first because they decide where an error may be sent; "" if none. Names
// are compared case-insensitively, as zitadel's decoder reads them: state
// and STATE are the same parameter twice.
func repeatedParam(form url.Values) string {
	counts := make(map[string]int, len(form))
	for k, vs := range form {
		counts[strings.ToLower(k)] += len(vs)
	}
	for _, k := range []string{"client_id", "redirect_uri"} {
		if counts[k] > 1 {
			return k
		}
	}
	names := make([]string, 0, len(counts))
	for k, n := range counts {
		if n > 1 && !multiValued[k] && k != "" { // a nameless parameter means nothing to anyone
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[0]
}
