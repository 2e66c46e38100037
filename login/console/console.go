// Package console is the admin console at /admin: server-rendered pages
// in the sign-in pages' look (the layout, styles and security headers of
// package login) over the admin service (package admin), like the CLI and
// the admin API, so the three cannot drift.
//
// Who may use it: a signed-in user whose role is the admin role
// (GATEHOUSE_ADMIN_ROLE, ADMIN by default), in a session that passed two
// factors; login.Handler.StrongSession decides and sends everyone else to
// sign in, to step up, or away. Every form carries the CSRF token and is
// refused cross-site (login.Handler.Forms); every change goes through the
// service, which audits it with the acting admin. Destructive actions
// (disable, sign out everywhere, reset second factors, delete, rotate a
// secret or the keys) are a GET that shows a confirmation page whose form
// posts with confirm=yes; a post without it is sent to that page.
// Updates carry the version the admin saw: when someone changed the
// record meanwhile nothing is overwritten and the page says so.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/login/password"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Prefix is where the console is mounted.
const Prefix = "/admin"

// Pages is what the console uses of the sign-in pages (*login.Handler).
type Pages interface {
	Pages(next http.Handler) http.Handler
	Forms(next http.Handler) http.Handler
	CSRFToken(w http.ResponseWriter, r *http.Request) string
	RenderBody(w http.ResponseWriter, r *http.Request, status int, title string, wide bool, body template.HTML)
	RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message, link, linkText string)
	InternalError(w http.ResponseWriter, r *http.Request, what string, err error, attrs ...any)
	StrongSession(w http.ResponseWriter, r *http.Request, ret string, allowed func(*storage.User) bool, forbidden string) (*storage.Session, *storage.User, bool)
}

// Config wires the console.
type Config struct {
	Service *admin.Service
	Pages   Pages
	// AdminRole is the role whose users may use the console.
	AdminRole string
	// ClientIP is the request's client address for the audit trail (it
	// knows the trusted proxies).
	ClientIP func(*http.Request) string
	Now      func() time.Time
	Logger   *slog.Logger
}

// Console serves the admin console.
type Console struct {
	svc       *admin.Service
	pages     Pages
	adminRole string
	ip        func(*http.Request) string
	now       func() time.Time
	log       *slog.Logger
	tmpl      *template.Template
	router    chi.Router
}

//go:embed templates/*.html
var templateFS embed.FS

// New returns the console for cfg.
func New(cfg Config) (*Console, error) {
	if cfg.Service == nil || cfg.Pages == nil || cfg.ClientIP == nil || cfg.AdminRole == "" {
		return nil, errors.New("console: Service, Pages, ClientIP and AdminRole are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("console").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	c := &Console{svc: cfg.Service, pages: cfg.Pages, adminRole: cfg.AdminRole, ip: cfg.ClientIP,
		now: cfg.Now, log: cfg.Logger.With("component", "console"), tmpl: t}
	c.router = c.routes()
	return c, nil
}

func (c *Console) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(httpobs.ChiRoute, c.pages.Pages, c.guard)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", Prefix, "Back to the console")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		c.pages.RenderMessage(w, r, http.StatusMethodNotAllowed, "Not allowed", "This page cannot be used that way.", Prefix, "Back to the console")
	})
	home := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/users", http.StatusSeeOther)
	}
	r.Get(Prefix, home)
	r.Get(Prefix+"/", home) // the address people type
	r.Get(Prefix+"/users", c.getUsers)
	r.Get(Prefix+"/users/new", c.getNewUser)
	r.Get(Prefix+"/users/{id}", c.getUser)
	r.Get(Prefix+"/users/{id}/{action}", c.getUserConfirm)
	r.Get(Prefix+"/clients", c.getClients)
	r.Get(Prefix+"/clients/new", c.getNewClient)
	r.Get(Prefix+"/clients/{id}", c.getClient)
	r.Get(Prefix+"/clients/{id}/{action}", c.getClientConfirm)
	r.Get(Prefix+"/keys", c.getKeys)
	r.Get(Prefix+"/keys/rotate", c.getKeysConfirm)
	r.Get(Prefix+"/audit", c.getAudit)
	r.Group(func(r chi.Router) {
		r.Use(c.pages.Forms)
		r.Post(Prefix+"/users", c.postNewUser)
		r.Post(Prefix+"/users/{id}/role", c.postRole)
		r.Post(Prefix+"/users/{id}/verified", c.postVerified)
		r.Post(Prefix+"/users/{id}/enable", c.postEnable)
		r.Post(Prefix+"/users/{id}/unlock", c.postUnlock)
		r.Post(Prefix+"/users/{id}/password", c.postPassword)
		r.Post(Prefix+"/users/{id}/unlink", c.postUnlink)
		r.Post(Prefix+"/users/{id}/sessions/end", c.postEndSession)
		r.Post(Prefix+"/users/{id}/{action}", c.postUserConfirmed)
		r.Post(Prefix+"/clients", c.postNewClient)
		r.Post(Prefix+"/clients/{id}", c.postClient)
		r.Post(Prefix+"/clients/{id}/{action}", c.postClientConfirmed)
		r.Post(Prefix+"/keys/rotate", c.postKeysRotate)
	})
	return r
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.router.ServeHTTP(w, r) }

type ctxKey struct{}

// signedIn is the admin using the console and the actor of their changes.
type signedIn struct {
	user  *storage.User
	actor admin.Actor
}

// guard admits the admin role with two factors (StrongSession) and puts
// the admin in the request's context.
func (c *Console) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ret := Prefix
		if r.Method == http.MethodGet {
			ret = r.URL.RequestURI()
		}
		_, user, ok := c.pages.StrongSession(w, r, ret, func(u *storage.User) bool { return u.Role == c.adminRole },
			"The admin console is for administrators of this sign-in service.")
		if !ok {
			return
		}
		in := signedIn{user: user, actor: admin.Actor{UserID: user.ID, IP: c.ip(r), UserAgent: r.UserAgent()}}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, in)))
	})
}

func current(r *http.Request) signedIn {
	in, _ := r.Context().Value(ctxKey{}).(signedIn)
	return in
}

// base is what every console page shows around its content.
type base struct {
	Nav    string // the section: users, clients, keys, audit
	CSRF   string
	Me     *storage.User
	Notice string
	Error  string
}

// render writes template name (a page of the console) with data, whose
// base is filled here.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, title, name string, b *base, data any) {
	b.Me = current(r).user
	b.CSRF = c.pages.CSRFToken(w, r)
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		c.pages.InternalError(w, r, "console: render "+name, err)
		return
	}
	c.pages.RenderBody(w, r, status, title, true, template.HTML(buf.String())) // html/template output
}

// fail answers a service error: the admin's mistake (or a conflict) is
// shown on the page again by rerender with the status it calls for;
// anything else is the 500 page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error, rerender func(status int, msg string)) {
	var ae *admin.Error
	if errors.Is(err, password.ErrBusy) {
		w.Header().Set("Retry-After", "5")
		c.pages.RenderMessage(w, r, http.StatusServiceUnavailable, "Please try again", "The server is handling a lot of sign-ins right now, so nothing was changed. Please try again in a moment.", Prefix, "Back to the console")
		return
	}
	if !errors.As(err, &ae) {
		c.pages.InternalError(w, r, "console: "+r.URL.Path, err)
		return
	}
	switch ae.Code {
	case admin.CodeNotFound:
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Not found", capitalise(ae.Message)+".", Prefix, "Back to the console")
	case admin.CodeVersionMismatch:
		rerender(http.StatusConflict, "Someone else changed this since you opened the page, so nothing was changed. The page shows the current values: check them and try again.")
	case admin.CodeConflict:
		rerender(http.StatusConflict, capitalise(ae.Message)+".")
	default:
		rerender(http.StatusUnprocessableEntity, capitalise(ae.Message)+".")
	}
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// done redirects after a change (post/redirect/get) to path with a notice
// key; the page maps it to fixed text, so nothing from the URL is shown.
func done(w http.ResponseWriter, r *http.Request, path, notice string) {
	http.Redirect(w, r, path+"?"+url.Values{"done": {notice}}.Encode(), http.StatusSeeOther)
}

// errNoVersion refuses a change whose form carried no version. Every
// form of a versioned record carries the version its page showed; the
// service reads a missing one as "no check" (and retries a lost race),
// so without this a crafted or truncated form would overwrite someone
// else's change, or delete a record changed since, without a word.
var errNoVersion = &admin.Error{Code: admin.CodeInvalid, Field: "version",
	Message: "the form carried no version of the record, so nothing was changed: open the page again and retry"}

// formVersion is the version the form's page showed (errNoVersion if none).
func formVersion(r *http.Request) (string, error) {
	v := r.PostForm.Get("version")
	if v == "" {
		return "", errNoVersion
	}
	return v, nil
}

// confirmed reports whether a destructive form came from its
// confirmation page; if not it sends the browser there.
func confirmed(w http.ResponseWriter, r *http.Request) bool {
	if r.PostForm.Get("confirm") == "yes" {
		return true
	}
	http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
	return false
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"join": strings.Join,
	// authFields is the data of the "client-auth" template: the form and
	// the auth methods to offer (with "none" on a new client's page).
	"authFields": func(f clientForm, withPublic bool) any {
		return struct {
			Form    clientForm
			Choices []choice
		}{f, f.AuthChoices(withPublic)}
	},
	"lines": func(s []string) string { return strings.Join(s, "\n") },
}
