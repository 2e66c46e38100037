package op

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// An authorization request is bound to the browser that sent it: the
// authorization endpoint sets a cookie holding HMAC(key, request ID), and the
// login UI (Flow.StartedHere) and the callback refuse a request the browser
// cannot show it for. Without this, an attacker could start a request, lure
// a signed-in victim to /login?authRequestID=… (SSO completes it silently)
// and collect the victim's code at the callback. One cookie per request, so
// several tabs and apps can sign in at once; each expires with its request.
const bindingCookiePrefix = "gatehouse_ar_"

func (p *Provider) bindingValue(authRequestID string) string {
	m := hmac.New(sha256.New, p.cfg.BindingKey[:])
	m.Write([]byte(authRequestID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// bindingCookieName carries the __Host- prefix on https (see login's
// cookieName): only this host can set it.
func (p *Provider) bindingCookieName(authRequestID string) string {
	if strings.HasPrefix(p.cfg.Issuer, "https://") {
		return "__Host-" + bindingCookiePrefix + authRequestID
	}
	return bindingCookiePrefix + authRequestID
}

func (p *Provider) setBinding(w http.ResponseWriter, authRequestID string) {
	http.SetCookie(w, &http.Cookie{
		Name:     p.bindingCookieName(authRequestID),
		Value:    p.bindingValue(authRequestID),
		Path:     "/",
		MaxAge:   int(p.cfg.AuthRequestTTL / time.Second),
		HttpOnly: true,
		Secure:   strings.HasPrefix(p.cfg.Issuer, "https://"),
		SameSite: http.SameSiteLaxMode,
	})
}

func (p *Provider) clearBinding(w http.ResponseWriter, authRequestID string) {
	http.SetCookie(w, &http.Cookie{
		Name: p.bindingCookieName(authRequestID), Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: strings.HasPrefix(p.cfg.Issuer, "https://"), SameSite: http.SameSiteLaxMode,
	})
}

// StartedHere implements login.Flow.
func (p *Provider) StartedHere(r *http.Request, authRequestID string) bool {
	c, err := r.Cookie(p.bindingCookieName(authRequestID))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(p.bindingValue(authRequestID))) == 1
}
