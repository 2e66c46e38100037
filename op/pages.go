package op

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/url"
)

//go:embed templates/*.html
var templateFS embed.FS

// Parsed once; templates are constants of the binary.
var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// formPostJS submits the form_post form. It is a file rather than an inline
// script so the page runs under a CSP without 'unsafe-inline'; without
// JavaScript the user presses Continue.
const formPostJS = `document.getElementById("form_post").submit();`

func serveFormPostJS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write([]byte(formPostJS))
}

// formPost renders the OAuth 2.0 Form Post Response Mode page.
func (p *Provider) formPost(w http.ResponseWriter, action string, params url.Values) {
	var buf bytes.Buffer
	err := pages.ExecuteTemplate(&buf, "form_post.html", struct {
		Action string
		Params url.Values
	}{action, params})
	if err != nil {
		p.log.Error("render form_post", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	origin := action
	if u, err := url.Parse(action); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action "+origin+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	_, _ = buf.WriteTo(w)
}

// errorPage shows a problem that must not be redirected to a client.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, message, link string) {
	p.page(w, r, status, "Sign-in problem", message, link)
}

// PageRenderer shows a person a page in the sign-in UI's look, with its
// header and a way on (package login implements it; cmd wires it).
type PageRenderer interface {
	Page(w http.ResponseWriter, r *http.Request, status int, title, message string)
}

func (p *Provider) page(w http.ResponseWriter, r *http.Request, status int, title, message, link string) {
	if p.pages != nil && link == "" {
		p.pages.Page(w, r, status, title, message)
		return
	}
	var buf bytes.Buffer
	err := pages.ExecuteTemplate(&buf, "page.html", struct{ Title, Message, Link string }{title, message, link})
	if err != nil {
		p.log.Error("render page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// home tells a person who opens the issuer URL what it is and where to go.
func (p *Provider) home(w http.ResponseWriter, r *http.Request) {
	p.page(w, r, http.StatusOK, "Sign-in service", "Applications you use sign you in here. To see or change your account, sign in below; developers find the OpenID Connect configuration at "+p.cfg.Issuer+pathDiscovery+".", "")
}
