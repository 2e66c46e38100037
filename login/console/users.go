package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

// userNotices are the fixed texts of done=… after a change to a user.
var userNotices = map[string]string{
	"created":       "The user was created.",
	"role":          "The role was changed. The user's next ID token carries it.",
	"verified":      "The address is now marked verified.",
	"unverified":    "The address is now marked not verified.",
	"disabled":      "The account was disabled and its sessions ended.",
	"enabled":       "The account was enabled.",
	"unlocked":      "Sign-in was unlocked.",
	"password":      "The password was set. The user's sessions ended.",
	"unlinked":      "The upstream identity was disconnected.",
	"session-ended": "The session was ended; its apps were told.",
	"signed-out":    "Every session of the user was ended; their apps were told.",
	"mfa-reset":     "The second factors were removed, the sessions ended and the user told by mail.",
	"deleted":       "The user was deleted.",
}

type usersPage struct {
	base
	Query string
	Users []admin.User
	Next  string
}

func (c *Console) getUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := &usersPage{base: base{Nav: "users", Notice: userNotices[q.Get("done")]}, Query: strings.TrimSpace(q.Get("q"))}
	page, err := c.svc.ListUsers(r.Context(), current(r).actor, admin.UserQuery{Search: p.Query, Cursor: q.Get("cursor")})
	if err != nil {
		c.fail(w, r, err, func(status int, msg string) {
			p.Error = msg
			c.render(w, r, status, "Users", "users", &p.base, p)
		})
		return
	}
	p.Users = page.Items
	if page.NextCursor != "" {
		p.Next = Prefix + "/users?" + url.Values{"q": {p.Query}, "cursor": {page.NextCursor}}.Encode()
	}
	c.render(w, r, http.StatusOK, "Users", "users", &p.base, p)
}

type userPage struct {
	base
	User     *admin.User
	Sessions []admin.Session
	Events   []auditRow
	Roles    []string
	// Self: the admin is looking at their own account; the actions that
	// would lock them out of the console are not offered.
	Self bool
}

// getUser is a user's page: the account, its sessions and linked
// identities, the recent audit events about it, and the actions.
func (c *Console) getUser(w http.ResponseWriter, r *http.Request) {
	c.showUser(w, r, http.StatusOK, chi.URLParam(r, "id"), userNotices[r.URL.Query().Get("done")], "")
}

func (c *Console) showUser(w http.ResponseWriter, r *http.Request, status int, id, notice, errMsg string) {
	ctx, in := r.Context(), current(r)
	u, err := c.svc.GetUser(ctx, in.actor, id)
	if err != nil {
		c.fail(w, r, err, func(int, string) { c.pages.InternalError(w, r, "console: load user", err) })
		return
	}
	sessions, err := c.svc.Sessions(ctx, in.actor, id)
	if err != nil {
		c.pages.InternalError(w, r, "console: list sessions", err)
		return
	}
	live := sessions[:0]
	for _, s := range sessions {
		if !s.Expired {
			live = append(live, s)
		}
	}
	events, err := c.svc.Audit(ctx, in.actor, admin.AuditQuery{User: id, Limit: 20})
	if err != nil {
		c.pages.InternalError(w, r, "console: audit of user", err)
		return
	}
	rows, err := c.auditRows(r, events.Items)
	if err != nil {
		c.pages.InternalError(w, r, "console: audit of user", err)
		return
	}
	p := &userPage{base: base{Nav: "users", Notice: notice, Error: errMsg}, User: u, Sessions: live, Events: rows,
		Roles: c.roles(u.Role), Self: u.ID == in.user.ID}
	c.render(w, r, status, u.Email, "user", &p.base, p)
}

// roles are the choices of the role field: the usual ones and the user's.
func (c *Console) roles(have string) []string {
	roles := []string{admin.DefaultRole, "ADMIN"}
	for _, x := range []string{c.adminRole, have} {
		if x != "" && !slices.Contains(roles, x) {
			roles = append(roles, x)
		}
	}
	return roles
}

// change runs one change of the user in the URL and redirects to its page
// with notice; a refused change shows the page again with why.
func (c *Console) change(w http.ResponseWriter, r *http.Request, notice string, do func(id string, in signedIn) error) {
	id := chi.URLParam(r, "id")
	if err := do(id, current(r)); err != nil {
		c.fail(w, r, err, func(status int, msg string) { c.showUser(w, r, status, id, "", msg) })
		return
	}
	if notice == "deleted" {
		done(w, r, Prefix+"/users", notice)
		return
	}
	done(w, r, Prefix+"/users/"+url.PathEscape(id), notice)
}

// errSelf refuses a change that would lock the acting admin out of the
// console; another admin (or the CLI) can make it.
var errSelf = &admin.Error{Code: admin.CodeInvalid, Message: "you cannot do this to your own account here: you would lose access to the console. Another admin, or the command line, can"}

func (c *Console) postRole(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "role", func(id string, in signedIn) error {
		role := strings.TrimSpace(r.PostForm.Get("role"))
		if id == in.user.ID && role != c.adminRole {
			return errSelf
		}
		version, err := formVersion(r)
		if err != nil {
			return err
		}
		_, err = c.svc.SetRole(r.Context(), in.actor, id, role, version)
		return err
	})
}

func (c *Console) postVerified(w http.ResponseWriter, r *http.Request) {
	verified := r.PostForm.Get("verified") == "true"
	notice := "unverified"
	if verified {
		notice = "verified"
	}
	c.change(w, r, notice, func(id string, in signedIn) error {
		version, err := formVersion(r)
		if err != nil {
			return err
		}
		_, err = c.svc.SetEmailVerified(r.Context(), in.actor, id, verified, version)
		return err
	})
}

func (c *Console) postEnable(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "enabled", func(id string, in signedIn) error {
		version, err := formVersion(r)
		if err != nil {
			return err
		}
		_, err = c.svc.Enable(r.Context(), in.actor, id, version)
		return err
	})
}

func (c *Console) postUnlock(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "unlocked", func(id string, in signedIn) error {
		u, err := c.svc.GetUser(r.Context(), in.actor, id)
		if err != nil {
			return err
		}
		return c.svc.Unlock(r.Context(), in.actor, u.Email)
	})
}

func (c *Console) postPassword(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "password", func(id string, in signedIn) error {
		pw := r.PostForm.Get("password")
		if pw == "" {
			return &admin.Error{Code: admin.CodeInvalid, Field: "password", Message: "enter the new password"}
		}
		version, err := formVersion(r)
		if err != nil {
			return err
		}
		_, _, err = c.svc.SetPassword(r.Context(), in.actor, id, pw, version)
		return err
	})
}

func (c *Console) postUnlink(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "unlinked", func(id string, in signedIn) error {
		_, err := c.svc.UnlinkIdentity(r.Context(), in.actor, id, r.PostForm.Get("upstream"))
		return err
	})
}

func (c *Console) postEndSession(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, "session-ended", func(id string, in signedIn) error {
		sid := r.PostForm.Get("session")
		if sid == "" {
			return &admin.Error{Code: admin.CodeInvalid, Field: "session", Message: "no session was chosen"}
		}
		_, err := c.svc.SignOut(r.Context(), in.actor, id, sid)
		return err
	})
}

// destructive are the user actions behind a confirmation page: what the
// page says, the button, and the change.
type destructive struct {
	Title, Message, Button string
	notice                 string
	// self refuses the action on the admin's own account.
	self bool
	do   func(c *Console, r *http.Request, id string, in signedIn) error
}

var userActions = map[string]destructive{
	"disable": {Title: "Disable this account?", Button: "Disable account", notice: "disabled", self: true,
		Message: "The user is signed out everywhere (their apps are told) and cannot sign in, refresh tokens or use the account until it is enabled again.",
		do: func(c *Console, r *http.Request, id string, in signedIn) error {
			version, err := formVersion(r)
			if err != nil {
				return err
			}
			_, _, err = c.svc.Disable(r.Context(), in.actor, id, version)
			return err
		}},
	"sign-out": {Title: "Sign this user out everywhere?", Button: "Sign out everywhere", notice: "signed-out",
		Message: "Every session ends and every refresh token stops working, offline ones too; each app that received tokens is told by back-channel logout.",
		do: func(c *Console, r *http.Request, id string, in signedIn) error {
			_, err := c.svc.SignOut(r.Context(), in.actor, id, "")
			return err
		}},
	"reset-mfa": {Title: "Remove this user's second factors?", Button: "Remove second factors", notice: "mfa-reset", self: true,
		Message: "Their authenticator app, passkeys and recovery codes are removed and their sessions end. They are told by mail. Do this only after checking who asked: it is how an account is taken over through a help desk.",
		do: func(c *Console, r *http.Request, id string, in signedIn) error {
			_, err := c.svc.ResetMFA(r.Context(), in.actor, id)
			return err
		}},
	"delete": {Title: "Delete this user?", Button: "Delete user", notice: "deleted", self: true,
		Message: "The account, its sessions, tokens, factors and linked identities are deleted; apps are told. This cannot be undone.",
		do: func(c *Console, r *http.Request, id string, in signedIn) error {
			version, err := formVersion(r)
			if err != nil {
				return err
			}
			return c.svc.DeleteUser(r.Context(), in.actor, id, version)
		}},
}

type confirmPage struct {
	base
	destructive
	Action  string // the form's action
	Subject string // whom or what it is about
	Version string
	Back    string
}

func (c *Console) getUserConfirm(w http.ResponseWriter, r *http.Request) {
	d, ok := userActions[chi.URLParam(r, "action")]
	if !ok {
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", Prefix, "Back to the console")
		return
	}
	id := chi.URLParam(r, "id")
	u, err := c.svc.GetUser(r.Context(), current(r).actor, id)
	if err != nil {
		c.fail(w, r, err, func(int, string) { c.pages.InternalError(w, r, "console: load user", err) })
		return
	}
	if d.self && u.ID == current(r).user.ID {
		c.showUser(w, r, http.StatusUnprocessableEntity, id, "", capitalise(errSelf.Message)+".")
		return
	}
	back := Prefix + "/users/" + url.PathEscape(id)
	p := &confirmPage{base: base{Nav: "users"}, destructive: d, Action: r.URL.Path, Subject: u.Email, Version: u.Version, Back: back}
	c.render(w, r, http.StatusOK, d.Title, "confirm", &p.base, p)
}

func (c *Console) postUserConfirmed(w http.ResponseWriter, r *http.Request) {
	d, ok := userActions[chi.URLParam(r, "action")]
	if !ok {
		c.pages.RenderMessage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", Prefix, "Back to the console")
		return
	}
	if !confirmed(w, r) {
		return
	}
	c.change(w, r, d.notice, func(id string, in signedIn) error {
		if d.self && id == in.user.ID {
			return errSelf
		}
		return d.do(c, r, id, in)
	})
}

type newUserPage struct {
	base
	Email, Name, Role string
	Verified          bool
	Roles             []string
}

func (c *Console) getNewUser(w http.ResponseWriter, r *http.Request) {
	p := &newUserPage{base: base{Nav: "users"}, Role: admin.DefaultRole, Roles: c.roles("")}
	c.render(w, r, http.StatusOK, "New user", "user-new", &p.base, p)
}

func (c *Console) postNewUser(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	p := &newUserPage{base: base{Nav: "users"}, Email: f.Get("email"), Name: f.Get("name"), Role: f.Get("role"),
		Verified: f.Get("verified") == "true"}
	p.Roles = c.roles(p.Role)
	u, err := c.svc.CreateUser(r.Context(), current(r).actor, admin.NewUser{Email: p.Email, Name: p.Name, Role: p.Role,
		EmailVerified: p.Verified, Password: f.Get("password")})
	if err != nil {
		c.fail(w, r, err, func(status int, msg string) {
			p.Error = msg
			c.render(w, r, status, "New user", "user-new", &p.base, p)
		})
		return
	}
	done(w, r, Prefix+"/users/"+url.PathEscape(u.ID), "created")
}

// auditRow is an audit event as the console lists it: users named by
// address where they still exist.
type auditRow struct {
	storage.AuditEvent
	ActorName, SubjectName string
	ActorLink, SubjectLink string
	Details                string
}

// auditRows names the users among the events' actors and subjects (one
// lookup per distinct ID).
func (c *Console) auditRows(r *http.Request, events []storage.AuditEvent) ([]auditRow, error) {
	names := map[string]*admin.User{}
	name := func(id string) (string, string, error) {
		if id == "" || strings.Contains(id, ":") || id == storage.ActorCLI || id == storage.ActorSystem || id == storage.ActorAnonymous {
			return id, "", nil
		}
		u, seen := names[id]
		if !seen {
			var err error
			u, err = c.svc.GetUser(r.Context(), current(r).actor, id)
			if err != nil && !errors.Is(err, admin.ErrNotFound) {
				return "", "", err
			}
			names[id] = u
		}
		if u == nil {
			return id, "", nil
		}
		return u.Email, Prefix + "/users/" + url.PathEscape(id), nil
	}
	out := make([]auditRow, 0, len(events))
	for _, e := range events {
		row := auditRow{AuditEvent: e, Details: details(e.Detail)}
		var err error
		if row.ActorName, row.ActorLink, err = name(e.Actor); err != nil {
			return nil, err
		}
		if row.SubjectName, row.SubjectLink, err = name(e.Subject); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

func details(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}
