package admin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

// User is an account as administrators see it: never the password hash.
type User struct {
	ID            string
	Email         string
	Name          string
	Role          string
	EmailVerified bool
	HasPassword   bool
	// DisabledAt is when an admin disabled the account; nil while it may
	// sign in.
	DisabledAt *time.Time
	// LockedUntil is when the sign-in lockout of the address (or of the
	// second step) ends; zero when neither is locked.
	LockedUntil time.Time
	// Linked are the upstream identities linked to the account.
	Linked    []storage.LinkedIdentity
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version changes with every change of the account; give it back as
	// the expected version of an update.
	Version string
}

// Disabled reports whether the account is disabled.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// Locked reports whether sign-in is locked after failed attempts.
func (u *User) Locked() bool { return !u.LockedUntil.IsZero() }

// DefaultRole is the role of a user created without one.
const DefaultRole = "USER"

// rolePattern: roles are upper-case names (USER, ADMIN, BILLING_ADMIN).
var rolePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,31}$`)

// ValidRole reports whether role is a role name: upper case, digits and
// '_', starting with a letter, at most 32 characters.
func ValidRole(role string) bool { return rolePattern.MatchString(role) }

func checkRole(role string) error {
	if !ValidRole(role) {
		return invalid("role", "role %q: use an upper-case name such as USER or ADMIN", role)
	}
	return nil
}

// checkEmail normalises an address and applies the rule of the
// registration page (policy.CheckEmail).
func checkEmail(raw string) (string, error) {
	email := login.NormalizeEmail(raw)
	if policy.CheckEmail(email) != "" {
		return "", invalid("email", "%q is not a valid email address", raw)
	}
	return email, nil
}

// checkName normalises a display name. Administrators may give a name of
// a single character (the registration page wants two: a person typing
// their own name rarely has one letter, an admin naming a service account
// may); the other limits are the page's.
func checkName(raw string) (string, error) {
	name := policy.NormalizeName(raw)
	switch {
	case name == "":
		return "", invalid("name", "a name is required")
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", invalid("name", "the name contains characters that are not allowed")
	case utf8.RuneCountInString(name) > policy.MaxNameLength:
		return "", invalid("name", "the name must be at most %d characters", policy.MaxNameLength)
	}
	return name, nil
}

// hashPassword applies the password policy and hashes pw.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	if v := s.policy.Check(pw); len(v) > 0 {
		return "", invalid("password", "%s", v[0].Message)
	}
	if s.hasher == nil {
		return "", errors.New("admin: no password hasher configured")
	}
	h, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// Paging of ListUsers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
	// maxSearch bounds a search string: no address or name is longer.
	maxSearch = policy.MaxEmailLength
)

// UserQuery selects users for ListUsers.
type UserQuery struct {
	// Email, when set, selects the user with exactly this address (none
	// when there is no such user); Search and Cursor must then be empty.
	Email string
	// Search keeps users whose email starts with it or whose name
	// contains it, ignoring case.
	Search string
	// Limit is the page size: 0 for DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor continues a listing: the NextCursor of the previous page.
	Cursor string
}

// UserPage is one page of users, ordered by email.
type UserPage struct {
	Items []User
	// NextCursor continues the listing; "" on the last page.
	NextCursor string
}

// ListUsers returns a page of users by email (compared byte by byte), with
// an opaque cursor to the next page. Paging is by position, not a snapshot:
// users created meanwhile after the cursor show up, and an account whose
// address changes may move across pages.
func (s *Service) ListUsers(ctx context.Context, a Actor, q UserQuery) (*UserPage, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	limit, err := pageSize(q.Limit)
	if err != nil {
		return nil, err
	}
	if !storable(q.Email) {
		return nil, invalid("email", "the address contains characters that are not allowed")
	}
	if !storable(q.Search) {
		return nil, invalid("search", "the search contains characters that are not allowed")
	}
	if q.Email != "" {
		if q.Search != "" || q.Cursor != "" {
			return nil, invalid("email", "an exact email cannot be combined with a search or a cursor")
		}
		return s.userByExactEmail(ctx, q.Email)
	}
	search := login.NormalizeEmail(q.Search)
	if len(search) > maxSearch {
		return nil, invalid("search", "the search must be at most %d characters", maxSearch)
	}
	afterEmail, afterID, err := decodeCursor(q.Cursor)
	if err != nil {
		return nil, err
	}
	list, err := s.store.SearchUsers(ctx, storage.UserQuery{Search: search, AfterEmail: afterEmail, AfterID: afterID, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	page := &UserPage{}
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		page.NextCursor = encodeCursor(last.Email, last.ID)
	}
	if page.Items, err = s.views(ctx, list); err != nil {
		return nil, err
	}
	return page, nil
}

func (s *Service) userByExactEmail(ctx context.Context, raw string) (*UserPage, error) {
	u, err := s.store.GetUserByEmail(ctx, login.NormalizeEmail(raw))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &UserPage{Items: []User{}}, nil
	case err != nil:
		return nil, fmt.Errorf("load user: %w", err)
	}
	items, err := s.views(ctx, []storage.User{*u})
	if err != nil {
		return nil, err
	}
	return &UserPage{Items: items}, nil
}

// cursor is what a page cursor carries: where the page ended. It is opaque
// to callers (base64url of JSON), so its form may change.
type cursor struct {
	Email string `json:"e"`
	ID    string `json:"i"`
}

func encodeCursor(email, id string) string {
	b, _ := json.Marshal(cursor{email, id}) // two strings cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(raw string) (email, id string, err error) {
	if raw == "" {
		return "", "", nil
	}
	bad := invalid("cursor", "the cursor is not one this service gave out")
	if len(raw) > 4*maxSearch {
		return "", "", bad
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return "", "", bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Email == "" || !storable(c.Email) || !storable(c.ID) {
		return "", "", bad
	}
	return c.Email, c.ID, nil
}

// views turns stored users into what admins see: their lock state (one
// query for the page) and linked identities.
func (s *Service) views(ctx context.Context, list []storage.User) ([]User, error) {
	lockKeys := make([]string, 0, 2*len(list))
	for _, u := range list {
		lockKeys = append(lockKeys, u.Email, login.SecondFactorLockKey(u.ID))
	}
	locks, err := s.store.LoginLocks(ctx, lockKeys, s.now())
	if err != nil {
		return nil, fmt.Errorf("read sign-in locks: %w", err)
	}
	out := make([]User, 0, len(list))
	for i := range list {
		u := &list[i]
		links, err := s.store.ListLinkedIdentities(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("list linked identities: %w", err)
		}
		v := User{
			ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, EmailVerified: u.EmailVerified,
			HasPassword: u.PasswordHash != "", DisabledAt: u.DisabledAt, Linked: links,
			CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Version: version(u.Version),
		}
		for _, k := range []string{u.Email, login.SecondFactorLockKey(u.ID)} {
			if t, ok := locks[k]; ok && t.After(v.LockedUntil) {
				v.LockedUntil = t
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) view(ctx context.Context, u *storage.User) (*User, error) {
	list, err := s.views(ctx, []storage.User{*u})
	if err != nil {
		return nil, err
	}
	return &list[0], nil
}

// GetUser returns the user with id.
func (s *Service) GetUser(ctx context.Context, a Actor, id string) (*User, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, u)
}

// loadUser reads user id, "no such user" when there is none. An ID no
// store can hold (a NUL byte, invalid UTF-8, which PostgreSQL refuses with
// an error) is no user's either: the caller's mistake, not a store failure.
func (s *Service) loadUser(ctx context.Context, id string) (*storage.User, error) {
	if !storable(id) {
		return nil, notFound("no such user")
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, storeErr(err, "no such user", "load user")
	}
	return u, nil
}

// storable reports whether s is text every store keeps: valid UTF-8
// without NUL (PostgreSQL's text refuses NUL and fails the query).
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// UserByEmail returns the user with the (normalised) address, for callers
// that name users by email (the CLI).
func (s *Service) UserByEmail(ctx context.Context, a Actor, email string) (*User, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	norm := login.NormalizeEmail(email)
	if !storable(norm) {
		return nil, notFound("no user with email %q", norm)
	}
	u, err := s.store.GetUserByEmail(ctx, norm)
	if err != nil {
		return nil, storeErr(err, "no user with email "+norm, "load user")
	}
	return s.view(ctx, u)
}

// NewUser describes a user to create.
type NewUser struct {
	Email string
	Name  string
	// Role defaults to DefaultRole.
	Role          string
	EmailVerified bool
	// Password, when not empty, must pass the password policy; without one
	// the user signs in through an upstream or sets one with a reset link.
	Password string
}

// CreateUser creates a user.
func (s *Service) CreateUser(ctx context.Context, a Actor, n NewUser) (*User, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	email, err := checkEmail(n.Email)
	if err != nil {
		return nil, err
	}
	name, err := checkName(n.Name)
	if err != nil {
		return nil, err
	}
	if n.Role == "" {
		n.Role = DefaultRole
	}
	if err := checkRole(n.Role); err != nil {
		return nil, err
	}
	var hash string
	if n.Password != "" {
		if hash, err = s.hashPassword(ctx, n.Password); err != nil {
			return nil, err
		}
	}
	now := s.now()
	u := &storage.User{
		ID: NewUserID(), Email: email, Name: name, Role: n.Role,
		EmailVerified: n.EmailVerified, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, conflict("email", "a user with email %s already exists", email)
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserCreated, Subject: u.ID, Detail: map[string]string{"role": u.Role}})
	return s.view(ctx, u)
}

// maxChangeRetries bounds how often a change without an expected version
// is re-applied after losing a race with another change of the same user.
const maxChangeRetries = 3

// changeUser reads user id, checks the expected version, lets change edit
// the row and writes it back with compare-and-set. change reports whether
// there is anything to write; it sees the row as stored. Without an
// expected version a lost race is retried on a fresh read: the caller asked
// for the change, not for a particular base. It returns the row as read and
// as written.
func (s *Service) changeUser(ctx context.Context, id, expected string, change func(u *storage.User) (bool, error)) (before, after *storage.User, err error) {
	for attempt := 0; ; attempt++ {
		u, err := s.loadUser(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if !matches(expected, u.Version) {
			return nil, nil, versionMismatch("the user")
		}
		read := *u
		changed, err := change(u)
		if err != nil || !changed {
			return &read, u, err
		}
		u.UpdatedAt = s.now()
		err = s.store.UpdateUser(ctx, u)
		switch {
		case err == nil:
			return &read, u, nil
		case errors.Is(err, storage.ErrConflict) && expected == "" && attempt < maxChangeRetries:
			continue
		case errors.Is(err, storage.ErrConflict):
			return nil, nil, versionMismatch("the user")
		default:
			return nil, nil, storeErr(err, "no such user", "update user")
		}
	}
}

// UserChange is a change to a user's account: nil fields stay as they are.
type UserChange struct {
	Role          *string
	EmailVerified *bool
	// Disabled true disables the account and ends the user's sessions
	// (see Disable); false enables it again.
	Disabled *bool
}

// UpdateUser applies every field of ch in one compare-and-set write: either
// all of them take effect or, on a stale expected version or an invalid
// field, none does. Each field that changed is audited as its single-field
// operation (SetRole, SetEmailVerified, Disable, Enable) audits it; those
// are this with one field. A change with no fields checks the expected
// version and writes nothing. Disabling ends the user's sessions after the
// write (the flag first, so a sign-in racing it meets one or the other) and
// the count is returned.
func (s *Service) UpdateUser(ctx context.Context, a Actor, id string, ch UserChange, expected string) (*User, int, error) {
	if err := begin(a); err != nil {
		return nil, 0, err
	}
	if ch.Role != nil {
		if err := checkRole(*ch.Role); err != nil {
			return nil, 0, err
		}
	}
	before, after, err := s.changeUser(ctx, id, expected, func(u *storage.User) (bool, error) {
		return ch.apply(u, s.now()), nil
	})
	if err != nil {
		return nil, 0, err
	}
	s.auditUserChange(ctx, a, before, after)
	n := 0
	if ch.Disabled != nil && *ch.Disabled {
		if n, err = s.sessions.EndUserSessions(ctx, id, "user_disabled"); err != nil {
			// Not audited as a disable yet: running it again finishes it.
			return nil, 0, fmt.Errorf("end the user's sessions: %w", err)
		}
		// Disabling a disabled user changes nothing but ends sessions
		// again (finishing a disable whose ending failed).
		if !before.Disabled() || n > 0 {
			s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserDisabled, Subject: id, Detail: map[string]string{"sessions": strconv.Itoa(n)}})
		}
	}
	v, err := s.view(ctx, after)
	return v, n, err
}

// apply sets the fields of ch on u and reports whether anything changed.
func (ch UserChange) apply(u *storage.User, now time.Time) bool {
	changed := false
	if ch.Role != nil && u.Role != *ch.Role {
		u.Role, changed = *ch.Role, true
	}
	if ch.EmailVerified != nil && u.EmailVerified != *ch.EmailVerified {
		u.EmailVerified, changed = *ch.EmailVerified, true
	}
	if ch.Disabled != nil && u.Disabled() != *ch.Disabled {
		u.DisabledAt, changed = nil, true
		if *ch.Disabled {
			u.DisabledAt = &now
		}
	}
	return changed
}

// auditUserChange records the role, verification and enabling changes
// between before and after; a disable is recorded by UpdateUser once the
// sessions have ended, with their count.
func (s *Service) auditUserChange(ctx context.Context, a Actor, before, after *storage.User) {
	if before.Role != after.Role {
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserRoleChanged, Subject: after.ID, Detail: map[string]string{"from": before.Role, "to": after.Role}})
	}
	if before.EmailVerified != after.EmailVerified {
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserVerifiedChanged, Subject: after.ID,
			Detail: map[string]string{"to": strconv.FormatBool(after.EmailVerified)}})
	}
	if before.Disabled() && !after.Disabled() {
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserEnabled, Subject: after.ID})
	}
}

// SetRole changes the user's role; it shows in their next tokens.
func (s *Service) SetRole(ctx context.Context, a Actor, id, role, expected string) (*User, error) {
	u, _, err := s.UpdateUser(ctx, a, id, UserChange{Role: &role}, expected)
	return u, err
}

// SetEmailVerified marks the user's address verified or not.
func (s *Service) SetEmailVerified(ctx context.Context, a Actor, id string, verified bool, expected string) (*User, error) {
	u, _, err := s.UpdateUser(ctx, a, id, UserChange{EmailVerified: &verified}, expected)
	return u, err
}

// Disable stops the user from signing in and ends every session and
// refresh token of theirs (their apps are told by back-channel logout).
// The flag is set first, so a sign-in racing this call either meets it or
// has its session ended. Disabling a disabled user changes nothing but
// ends sessions again (finishing a disable whose ending failed). It
// returns how many sessions ended.
func (s *Service) Disable(ctx context.Context, a Actor, id, expected string) (*User, int, error) {
	disabled := true
	return s.UpdateUser(ctx, a, id, UserChange{Disabled: &disabled}, expected)
}

// Enable lets a disabled user sign in again. Nothing that disabling ended
// comes back: the user signs in afresh.
func (s *Service) Enable(ctx context.Context, a Actor, id, expected string) (*User, error) {
	disabled := false
	u, _, err := s.UpdateUser(ctx, a, id, UserChange{Disabled: &disabled}, expected)
	return u, err
}

// SetPassword sets the user's password (checked against the password
// policy) and ends their sessions and refresh tokens: whoever knew the old
// one is out. It returns how many sessions ended.
func (s *Service) SetPassword(ctx context.Context, a Actor, id, password, expected string) (*User, int, error) {
	if err := begin(a); err != nil {
		return nil, 0, err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, 0, err
	}
	_, after, err := s.changeUser(ctx, id, expected, func(u *storage.User) (bool, error) {
		u.PasswordHash = hash
		return true, nil
	})
	if err != nil {
		return nil, 0, err
	}
	n, err := s.sessions.EndUserSessions(ctx, id, "admin_password_set")
	if err != nil {
		return nil, 0, fmt.Errorf("end the user's sessions: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserPasswordSet, Subject: id})
	v, err := s.view(ctx, after)
	return v, n, err
}

// checkVersion loads user id and checks the expected version, for the
// operations that do not update the user row itself.
func (s *Service) checkVersion(ctx context.Context, id, expected string) (*storage.User, error) {
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !matches(expected, u.Version) {
		return nil, versionMismatch("the user")
	}
	return u, nil
}

// DeleteUser deletes the user with everything of theirs. Sessions end
// first, while the grants that say which apps to tell still exist. The
// expected version is checked before; a change between the check and the
// deletion is not detected (the user is gone either way).
func (s *Service) DeleteUser(ctx context.Context, a Actor, id, expected string) error {
	if err := begin(a); err != nil {
		return err
	}
	if _, err := s.checkVersion(ctx, id, expected); err != nil {
		return err
	}
	if _, err := s.sessions.EndUserSessions(ctx, id, "account_deleted"); err != nil {
		return fmt.Errorf("end the user's sessions: %w", err)
	}
	if err := s.store.DeleteUser(ctx, id); err != nil {
		return storeErr(err, "no such user", "delete user")
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserDeleted, Subject: id})
	return nil
}

// Unlock lifts the sign-in lockout of an address, and of its account's
// second step when it has one. Locks are kept per submitted address
// whether or not an account exists, so any address can be unlocked; the
// event's subject is the account, else the address's pseudonym.
func (s *Service) Unlock(ctx context.Context, a Actor, email string) error {
	if err := begin(a); err != nil {
		return err
	}
	norm := login.NormalizeEmail(email)
	if norm == "" || len(norm) > maxSearch || !storable(norm) {
		return invalid("email", "give the address to unlock")
	}
	if err := s.store.ClearLoginFailures(ctx, norm); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	subject := login.AuditEmailSubject(s.emails, norm)
	u, err := s.store.GetUserByEmail(ctx, norm)
	switch {
	case err == nil:
		// The second step's lock too (wrong authenticator codes).
		if err := s.store.ClearLoginFailures(ctx, login.SecondFactorLockKey(u.ID)); err != nil {
			return fmt.Errorf("unlock the second step: %w", err)
		}
		subject = u.ID
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("load user: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditUserUnlocked, Subject: subject})
	return nil
}

// Session is a sign-in session as administrators see it: never the
// cookie's hash.
type Session struct {
	ID            string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	// Expired: past its idle or absolute expiry, not yet ended by the
	// cleanup job.
	Expired  bool
	AuthTime time.Time
	AMR      []string
	// Upstream is the identity provider signed in through; "" for
	// Gatehouse's own.
	Upstream  string
	Device    string // "Firefox on Windows"
	IP        string
	UserAgent string
	// Apps are the clients that received tokens in the session.
	Apps []login.SessionApp
}

// Sessions lists the user's sessions, newest first, with the apps of each.
func (s *Service) Sessions(ctx context.Context, a Actor, id string) ([]Session, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	if _, err := s.checkVersion(ctx, id, ""); err != nil {
		return nil, err
	}
	list, err := s.store.ListSessionsByUser(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := s.now()
	out := make([]Session, 0, len(list))
	for _, x := range list {
		apps, err := login.SessionApps(ctx, s.store, x.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Session{
			ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, IdleExpiresAt: x.IdleExpiresAt,
			ExpiresAt: x.ExpiresAt, Expired: !x.Live(now), AuthTime: x.AuthTime, AMR: x.AMR, Upstream: x.IDP,
			Device: login.DeviceName(x.UserAgent), IP: x.IP, UserAgent: x.UserAgent, Apps: apps,
		})
	}
	return out, nil
}

// SignOut ends the user's sessions. Without a session ID it is the
// incident-response tool: every session and every refresh token, offline
// ones too, as after a password reset. With one it ends that session as
// the user's own sign-out would; a session of another user is "not found"
// (the caller names the user, and the ID must be one of theirs). It
// returns how many sessions ended.
func (s *Service) SignOut(ctx context.Context, a Actor, id, sessionID string) (int, error) {
	if err := begin(a); err != nil {
		return 0, err
	}
	u, err := s.checkVersion(ctx, id, "")
	if err != nil {
		return 0, err
	}
	noSession := &Error{Code: CodeNotFound, Field: "session", Message: fmt.Sprintf("%s has no session %q", u.Email, sessionID)}
	if !storable(sessionID) {
		return 0, noSession
	}
	if sessionID == "" {
		n, err := s.sessions.EndUserSessions(ctx, id, "admin_sign_out")
		if err != nil {
			return 0, fmt.Errorf("end the user's sessions: %w", err)
		}
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditSessionEnded, Subject: id, Detail: map[string]string{"via": "admin", "sessions": strconv.Itoa(n)}})
		return n, nil
	}
	sess, err := s.store.GetSession(ctx, sessionID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && sess.UserID != id) {
		return 0, noSession
	}
	if err != nil {
		return 0, fmt.Errorf("load session: %w", err)
	}
	ended, err := s.sessions.EndSession(ctx, sess, "admin_sign_out")
	if err != nil {
		return 0, fmt.Errorf("end session: %w", err)
	}
	if !ended { // ended meanwhile by someone else
		return 0, noSession
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditSessionEnded, Subject: id, Detail: map[string]string{"via": "admin", "session_id": sess.ID}})
	return 1, nil
}

// UnlinkIdentity disconnects the user's account at an upstream. An admin
// may remove the last way a user has to sign in; the returned user shows
// it (no password, no links), and "Forgot password" still works for them.
func (s *Service) UnlinkIdentity(ctx context.Context, a Actor, id, upstream string) (*User, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	u, err := s.checkVersion(ctx, id, "")
	if err != nil {
		return nil, err
	}
	noLink := &Error{Code: CodeNotFound, Field: "upstream", Message: fmt.Sprintf("%s has no link to upstream %q", u.Email, upstream)}
	if !storable(upstream) {
		return nil, noLink
	}
	if err := s.store.UnlinkIdentity(ctx, id, upstream); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, noLink
		}
		return nil, fmt.Errorf("unlink: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditIdentityUnlinked, Subject: id, Detail: map[string]string{"upstream": upstream}})
	return s.view(ctx, u)
}

// MFAReset says what ResetMFA removed.
type MFAReset struct {
	Passkeys      int
	TOTP          bool
	RecoveryCodes int // unused ones
	Sessions      int // sessions ended
}

// ResetMFA removes every second factor of a user who lost theirs, ends
// their sessions and refresh tokens (a session that passed a second factor
// should not outlive it) and mails them (through the Notifier): a reset
// nobody asked for is how an account takeover through the helpdesk shows.
func (s *Service) ResetMFA(ctx context.Context, a Actor, id string) (*MFAReset, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	u, err := s.checkVersion(ctx, id, "")
	if err != nil {
		return nil, err
	}
	out := &MFAReset{}
	passkeys, err := s.store.ListWebAuthnCredentials(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	out.Passkeys = len(passkeys)
	_, err = s.store.GetTOTP(ctx, id)
	out.TOTP = err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("load authenticator app: %w", err)
	}
	if out.RecoveryCodes, err = s.store.CountRecoveryCodes(ctx, id); err != nil {
		return nil, fmt.Errorf("count recovery codes: %w", err)
	}
	if err := s.store.DeleteMFA(ctx, id); err != nil {
		return nil, fmt.Errorf("remove second factors: %w", err)
	}
	if out.Sessions, err = s.sessions.EndUserSessions(ctx, id, "mfa_reset"); err != nil {
		return nil, fmt.Errorf("end the user's sessions: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditMFAReset, Subject: id, Detail: map[string]string{
		"passkeys": strconv.Itoa(out.Passkeys), "totp": strconv.FormatBool(out.TOTP), "recovery_codes": strconv.Itoa(out.RecoveryCodes),
	}})
	if s.notifier != nil {
		s.notifier.MFAReset(ctx, u.Email, u.Name)
	}
	return out, nil
}
