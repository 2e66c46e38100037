package login

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/gatehouse-id/gatehouse/storage"
)

// next is where the user is headed once signed in: back into a pending
// authorize request (AuthRequestID), or to a page of this UI (Return, a
// same-site path such as /account). Registration, password reset and email
// verification carry it through their forms and links, so a user who had to
// create an account or reset a password still ends up in the application.
type next struct {
	AuthRequestID string
	Return        string
}

const defaultReturn = "/account"

// nextFrom reads the continuation from query or form values, dropping
// anything malformed.
func nextFrom(v url.Values) next {
	n := next{Return: safeReturn(v.Get("return"))}
	if id := v.Get("authRequestID"); id != "" && len(id) <= maxHandle && printable(id) {
		n.AuthRequestID = id
		n.Return = ""
	}
	return n
}

func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) < 0
}

// maxReturn bounds a return path. The detours of a pending sign-in
// (re-authentication before enrolling a factor, the recovery codes page)
// return to a page that carries the request's handle, such as
// "/account/totp?authRequestID=…", so it must fit a handle; a genuine one
// is rarely under 500 bytes, so a bound of 512 dropped the sign-in.
const maxReturn = maxHandle + 512

// safeReturn returns s if it is a same-site path ("/account", "/account?x=1"),
// or "". Nothing with a scheme, a host, "//", a backslash or control
// characters passes, so it can never send the browser to another site.
// The length bound leaves room for a path carrying an authRequestID handle
// (up to maxHandle): the continuations of enrolment and re-authentication
// ("/login?authRequestID=…", "/account/totp?authRequestID=…") are such
// paths, and a sealed request is often longer than 512 bytes.
func safeReturn(s string) string {
	if s == "" || len(s) > maxReturn || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") ||
		strings.ContainsAny(s, "\\") || !printable(s) {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return ""
	}
	return s
}

func (n next) values() url.Values {
	q := url.Values{}
	if n.AuthRequestID != "" {
		q.Set("authRequestID", n.AuthRequestID)
	} else if n.Return != "" {
		q.Set("return", n.Return)
	}
	return q
}

// url is path with the continuation in its query.
func (n next) url(path string) string {
	if q := n.values(); len(q) > 0 {
		return path + "?" + q.Encode()
	}
	return path
}

// loginURL is the sign-in page that continues n (a plain sign-in to the
// account page when n is empty).
func (n next) loginURL() string {
	if n.AuthRequestID == "" && n.Return == "" {
		n.Return = defaultReturn
	}
	return n.url("/login")
}

// withNext fills the view's continuation and the links between the pages.
func (h *Handler) withNext(v *view, n next) *view {
	v.AuthRequestID, v.Return = n.AuthRequestID, n.Return
	v.LoginURL = n.loginURL()
	v.ForgotURL = n.url("/forgot")
	v.ResendURL = n.url("/verify-email/resend")
	if !h.cfg.DisableRegistration {
		v.RegisterURL = n.url("/register")
	}
	return v
}

// flowContext is a continuation with its auth request loaded.
type flowContext struct {
	next   next
	ar     *storage.AuthRequest // nil for a plain sign-in
	client *storage.Client
}

// loadFlow resolves the continuation in v: a pending auth request (the
// friendly error page when it is gone, ok=false) or a plain sign-in with a
// return path (plainOK: a missing continuation means the account page).
func (h *Handler) loadFlow(w http.ResponseWriter, r *http.Request, v url.Values, plainOK bool) (*flowContext, bool) {
	n := nextFrom(v)
	if v.Get("authRequestID") != "" || (!plainOK && n.Return == "") {
		ar, client, ok := h.loadAuthRequest(w, r, v.Get("authRequestID"))
		if !ok {
			return nil, false
		}
		return &flowContext{next: next{AuthRequestID: v.Get("authRequestID")}, ar: ar, client: client}, true
	}
	if n.Return == "" {
		n.Return = defaultReturn
	}
	return &flowContext{next: n}, true
}

// liveAuthRequest reports whether handle carries an auth request that can
// still be completed (for links at the end of a long detour, such as a
// password reset).
func (h *Handler) liveAuthRequest(r *http.Request, handle string) bool {
	if handle == "" {
		return false
	}
	_, err := h.flow.PendingRequest(r.Context(), handle)
	return err == nil
}

// finishSignIn sends a user who has just authenticated (session started)
// onward: through consent back to the application, or to the return page.
func (h *Handler) finishSignIn(w http.ResponseWriter, r *http.Request, fc *flowContext, sess *storage.Session, user *storage.User) {
	if fc.ar != nil {
		h.consentStep(w, r, fc, sess, user)
		return
	}
	http.Redirect(w, r, fc.next.Return, http.StatusSeeOther)
}
