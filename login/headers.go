package login

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// The Content-Security-Policy.
//
// Nothing is allowed by default; the pages load only their own stylesheet and
// logo; there is no script at all; nobody may frame them (clickjacking); <base>
// cannot be injected.
//
// form-action needs care. Chrome applies form-action not only to a form's
// action but to every redirect that follows its submission: POST /login →
// 303 to the OP's callback (same origin) → 302 to the client's redirect_uri on
// another origin. With "form-action 'self'" that last hop is blocked and the
// user is stuck on a blank error. The usual workarounds are to drop form-action
// or to allow every "https: http:" target, both of which let an injected form
// post the password anywhere.
//
// Instead each page that starts such a chain names its destinations exactly:
// the sign-in and consent pages allow 'self' plus the origin of this auth
// request's redirect_uri (already validated by the OP against the client's
// registration) and of the OP callback; the sign-out confirmation allows the
// origin of the registered post_logout_redirect_uri it will redirect to. Every
// other response allows form-action 'self' only.
const cspFormActionSelf = "form-action 'self'"

// csp builds the policy; formAction lists extra form-action sources.
func (h *Handler) csp(formAction ...string) string {
	img := "img-src 'self'"
	if h.brand.imgSrc != "" {
		img += " " + h.brand.imgSrc // an external logo
	}
	fa := cspFormActionSelf
	if len(formAction) > 0 {
		fa += " " + strings.Join(formAction, " ")
	}
	// script-src 'self': the one script is the passkey helper, a static
	// file (static/webauthn.js); no inline script, no eval. connect-src
	// 'self' lets it ask this server for the WebAuthn options.
	return "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; " + img + "; " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

// securityHeaders sets the headers every UI response carries. Handlers that
// post to other origins widen form-action with allowFormAction. Every page is
// an authentication page (no-store), and several carry tokens in their URL
// (verification, reset and email-change links), so no page sends a Referer.
func (h *Handler) securityHeaders(next http.Handler) http.Handler {
	policy := h.csp()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", policy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// allowFormAction adds the origins of urls to form-action for this response.
// URLs that are relative (same origin) or unusable are skipped.
func (h *Handler) allowFormAction(w http.ResponseWriter, urls ...string) {
	var sources []string
	for _, u := range urls {
		if s := cspSource(u); s != "" && !slices.Contains(sources, s) {
			sources = append(sources, s)
		}
	}
	if len(sources) == 0 {
		return
	}
	w.Header().Set("Content-Security-Policy", h.csp(sources...))
}

var (
	cspScheme = regexp.MustCompile(`^[a-z][a-z0-9+.\-]*$`)
	cspHost   = regexp.MustCompile(`^(\[[0-9a-f:.]+\]|[a-z0-9.\-]+)(:[0-9]{1,5})?$`)
)

// cspSource returns the CSP source expression matching raw's origin:
// "https://app.example.com:8443" for web redirects, "com.example.app:" for a
// native app's private-use scheme. It never returns anything containing
// characters that could end the directive (';', ',', spaces, quotes).
func cspSource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	if !cspScheme.MatchString(scheme) {
		return ""
	}
	switch scheme {
	case "javascript", "data", "blob", "filesystem", "about":
		return ""
	}
	host := strings.ToLower(u.Host)
	if host == "" {
		return scheme + ":"
	}
	if !cspHost.MatchString(host) {
		// An internationalised or otherwise odd host: allow its scheme, still
		// far narrower than dropping form-action.
		return scheme + ":"
	}
	return scheme + "://" + host
}
