package login

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/gatehouse-id/gatehouse/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// view is the data every template receives. One struct for all pages keeps the
// templates simple; each page reads the fields it needs.
type view struct {
	Product  string
	Title    string
	CSRF     string
	LogoURL  string // set by render: "" ⇒ the bundled logo
	BrandCSS string // set by render: URL of the generated stylesheet, or ""
	Wide     bool   // a wider card (account page)
	// Body is the content of the "embed" page: HTML another package
	// rendered with its own (html/template) templates (RenderBody).
	Body template.HTML

	// Where the user is going: an authorize flow (AuthRequestID) or a
	// same-site page after a plain sign-in (Return).
	AuthRequestID string
	Return        string

	// Forms.
	ClientName string
	Lead       string // the line under the heading, when not the client's
	Name       string
	Email      string
	Error      string     // form-level error, shown in the alert
	ErrorLinks []linkView // ways forward shown inside the alert
	Err        map[string][]string
	Focus      string // id of the field to focus
	Notice     string // a success message
	Token      string
	Hint       string // password policy, under new-password fields
	// Links around the forms, keeping the flow.
	LoginURL, RegisterURL, ForgotURL, ResendURL string

	// Consent.
	UserEmail string
	Scopes    []scopeView
	Binding   string
	// Sign-out.
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
	SignedInAs            string
	// Account page.
	User        *storage.User
	HasPassword bool
	Linked      []linkedView     // linked upstream identities
	Connect     []upstreamButton // upstreams not linked yet
	// The session list: the shown sessions, how many more are not shown,
	// and how many besides this browser's there are in all.
	Sessions      []sessionView
	MoreSessions  int
	OtherSessions int
	// Upstream sign-in buttons (sign-in and registration pages).
	Upstreams []upstreamButton

	// Second factors: the second-factor page and the account page.
	HasTOTP       bool
	HasPasskeys   bool
	PasskeyOnly   bool // the app asked for a phishing-resistant sign-in
	ShowRecovery  bool // open the recovery-code form
	RecoveryLeft  int
	Passkeys      []passkeyView
	PasskeysOn    bool // passkeys are configured (WebAuthn)
	MFARequired   bool // the user's role requires two factors
	TOTPSecret    string
	TOTPURI       string
	RecoveryCodes []string
	// RecoveryText is the download, a data: URL built by getRecoveryCodes
	// from escaped text: typed as a URL, or html/template would replace
	// its data: scheme with "#ZgotmplZ".
	RecoveryText template.URL
	Method       string
	// Message pages.
	Message  string
	Link     string
	LinkText string
	Links    []linkView
}

// timeFormat is how the account page shows a moment (times are UTC: the
// page has no script to learn the browser's zone).
const timeFormat = "2 Jan 2006 15:04 UTC"

type fieldRef struct {
	V  *view
	ID string
}

type linkView struct {
	Href string
	Text string
}

// fieldError records msg against the field with the given id, and focuses
// the first field in error.
func (v *view) fieldError(id string, msgs ...string) {
	if len(msgs) == 0 {
		return
	}
	if v.Err == nil {
		v.Err = map[string][]string{}
	}
	v.Err[id] = append(v.Err[id], msgs...)
	if v.Focus == "" {
		v.Focus = id
	}
}

type scopeView struct {
	Name        string
	Description string // empty for scopes Gatehouse does not know
}

// pages holds one parsed template set per page, each the layout plus the page.
type pages struct {
	byName  map[string]*template.Template
	version map[string]string // static file → short content hash
}

func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}, version: map[string]string{}}
	err := fs.WalkDir(staticFS, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.version[strings.TrimPrefix(name, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		panic("login: static files: " + err.Error())
	}
	funcs := template.FuncMap{
		// static gives a cache-busting URL for an embedded static file.
		"static": func(name string) (string, error) {
			v, ok := p.version[name]
			if !ok {
				return "", fs.ErrNotExist
			}
			return "/static/" + name + "?v=" + v, nil
		},
		// fe bundles a view and a field id for the "field-errors" template.
		"fe": func(v *view, id string) fieldRef { return fieldRef{V: v, ID: id} },
		// errs are the messages recorded against field id.
		"errs": func(v *view, id string) []string { return v.Err[id] },
		// describedby lists the ids describing field id: its hint (if
		// hint) and its errors (if any).
		"describedby": func(v *view, id string, hint bool) string {
			var ids []string
			if hint {
				ids = append(ids, id+"-hint")
			}
			if len(v.Err[id]) > 0 {
				ids = append(ids, id+"-error")
			}
			return strings.Join(ids, " ")
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.Must(layout.Clone()).ParseFS(templateFS, name))
		p.byName[strings.TrimSuffix(base, ".html")] = t
	}
	return p
}

// render writes page with status. The page is rendered to a buffer first so a
// template failure becomes a clean 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := h.pages.byName[page]
	if !ok {
		h.log.ErrorContext(r.Context(), "unknown page template", "page", page)
		status, page, v = http.StatusInternalServerError, "message", &view{Title: "Something went wrong",
			Message: "Something went wrong on our side. Please try again in a moment."}
		t = h.pages.byName[page]
	}
	v.Product = h.cfg.ProductName
	v.LogoURL = h.brand.logo
	v.PasskeysOn = h.cfg.WebAuthn != nil
	if h.brand.css != nil {
		v.BrandCSS = "/brand.css?v=" + h.brand.version
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		h.log.ErrorContext(r.Context(), "render page", "page", page, "err", err)
		http.Error(w, "Something went wrong on our side. Please try again in a moment.", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError renders a friendly message page. link, if set, is a same-site
// path offering a way forward (e.g. back to the sign-in form); without one
// the page offers the account page (signed in) or the sign-in page, so it is
// never a dead end.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, title, message, link string) {
	v := &view{Title: title, Message: message}
	if link != "" {
		v.Link, v.LinkText = link, "Try again"
	} else {
		v.Links = h.wayOn(r)
	}
	h.render(w, r, status, "message", v)
}

// Page implements op's PageRenderer: the OpenID side's pages (the issuer's
// home page, errors before a sign-in could start) in this UI's look, with a
// way on.
func (h *Handler) Page(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	h.renderMessage(w, r, status, title, message, h.wayOn(r)...)
}

// wayOn is where a page without a flow sends the person: their account when
// the browser has a session, else the sign-in page. A store that cannot
// answer counts as no session: the page must still render.
func (h *Handler) wayOn(r *http.Request) []linkView {
	if sess, _, err := h.currentSession(r.Context(), r); err == nil && sess != nil {
		return []linkView{{Href: "/account", Text: "Go to your account"}}
	}
	return []linkView{{Href: next{Return: defaultReturn}.loginURL(), Text: "Sign in to your account"}}
}

// renderMessage renders a message page with links as ways forward.
func (h *Handler) renderMessage(w http.ResponseWriter, r *http.Request, status int, title, message string, links ...linkView) {
	h.render(w, r, status, "message", &view{Title: title, Message: message, Links: links})
}

// static serves the embedded CSS and logo. URLs carry a content hash (?v=), so
// the files can be cached for a year.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || name == "" || strings.Contains(name, "..") {
		h.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
		return
	}
	hd := w.Header()
	switch path.Ext(name) {
	case ".css":
		hd.Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		hd.Set("Content-Type", "image/svg+xml")
	case ".js":
		hd.Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		hd.Set("Content-Type", "application/octet-stream")
	}
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
