package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
)

// CSRF defence, double-submit style. The browser holds a random, session
// independent value in the gatehouse_csrf cookie; each form carries
// HMAC(CSRFKey, value) in a hidden field. A POST is accepted only if the field
// matches the cookie (constant-time compare). Another site can neither read the
// cookie nor compute the HMAC without the key. http.CrossOriginProtection
// (Sec-Fetch-Site / Origin) runs in front of this as a second, independent check.

const csrfField = "csrf"

var b64 = base64.RawURLEncoding

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return b64.EncodeToString(b)
}

func (h *Handler) mac(parts ...string) string {
	m := hmac.New(sha256.New, h.cfg.CSRFKey[:])
	for _, p := range parts {
		// Length-prefix each part so that ("ab","c") and ("a","bc") differ.
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return b64.EncodeToString(m.Sum(nil))
}

// validCSRFCookie reports the request's CSRF cookie value if it is well formed.
func (h *Handler) validCSRFCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(h.cookieName(CSRFCookie))
	if err != nil {
		return "", false
	}
	raw, err := b64.DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		return "", false
	}
	return c.Value, true
}

// csrfToken returns the form token for this browser, setting the CSRF cookie
// first if the browser has none. Call it once per response, before writing it.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	return h.mac("csrf", h.csrfValue(w, r))
}

// csrfValue returns the browser's CSRF cookie value, setting a new cookie
// first if it has none. Call it once per response, before writing it.
func (h *Handler) csrfValue(w http.ResponseWriter, r *http.Request) string {
	v, ok := h.validCSRFCookie(r)
	if !ok {
		v = randomToken(32)
		http.SetCookie(w, &http.Cookie{
			Name:     h.cookieName(CSRFCookie),
			Value:    v,
			Path:     "/",
			HttpOnly: true,
			Secure:   h.secure,
			SameSite: http.SameSiteLaxMode,
		})
	}
	return v
}

// checkCSRF compares the posted token with the cookie in constant time.
func (h *Handler) checkCSRF(r *http.Request) bool {
	v, ok := h.validCSRFCookie(r)
	if !ok {
		return false
	}
	got := r.PostForm.Get(csrfField)
	want := h.mac("csrf", v)
	return hmac.Equal([]byte(got), []byte(want))
}

// checkForm runs before every POST handler: it caps the body, parses the form
// and checks the CSRF token. Handlers read r.PostForm afterwards.
func (h *Handler) checkForm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.renderError(w, r, http.StatusRequestEntityTooLarge, "Request too large",
					"The form you sent was too large. Go back and try again.", "")
				return
			}
			h.renderError(w, r, http.StatusBadRequest, "Bad request",
				"The form you sent could not be read. Go back and try again.", "")
			return
		}
		if !h.checkCSRF(r) {
			h.log.InfoContext(r.Context(), "form post without a valid CSRF token", "path", r.URL.Path)
			retry := ""
			if id := r.PostForm.Get("authRequestID"); id != "" {
				retry = "/login?authRequestID=" + url.QueryEscape(id)
			}
			h.renderError(w, r, http.StatusForbidden, "Please try again",
				"This form has expired or was not sent from this site. Please try again.", retry)
			return
		}
		next.ServeHTTP(w, r)
	})
}
