package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// Importing users from another system (gatehouse import authjs / file). The
// rules that decide what an import changes live here, once: each backend runs
// ApplyImport inside one transaction per batch through its ImportTx.
//
// The rules, so that a second run changes nothing and no run undoes what
// happened in Gatehouse since the last one:
//   - A user is found by email, or with MatchByID by ID (the source's ID kept
//     as Gatehouse's, so the OIDC sub stays what the app knows). With
//     MatchByID an ID held by another email, or an email held by another ID,
//     skips the row: merging two accounts is a person's decision.
//   - A row joins an account that no import created or matched before only
//     when the source verified the address; else it is skipped. Anyone can
//     sign up to the source app with someone else's address, and joining
//     would give that person's Gatehouse account the source's password,
//     GitHub link and role (the rule of upstream sign-in: only a verified
//     address may join an account).
//   - The name follows the source when it has one; "" changes nothing. The
//     role likewise, but only while the user still has the role the last
//     import gave: a role changed in Gatehouse since (an admin demoting an
//     account the source still calls ADMIN) is newer and stays.
//     A verified email is carried over; an unverified one never un-verifies.
//   - The password hash is the source's on creation. Later it follows the
//     source only while the user's hash is still the one an import gave them
//     (or they have none): a hash set in Gatehouse since (the rehash at the
//     first sign-in, a reset, set-password) is newer and stays.
//   - A lock that is still running in the source is carried over once: a
//     later run does not lock again what `users unlock` lifted.
//   - Upstream accounts are linked by (upstream, subject); one already linked
//     to another user is reported and left alone.

// ImportUser is what a source says about one user.
type ImportUser struct {
	// SourceID is the user's ID in the source system ("" when it has none).
	SourceID string
	// ID is the ID the user gets when created. With MatchByID it is also how
	// an existing user is found; otherwise users are found by Email.
	ID        string
	MatchByID bool
	Email     string // normalised by the caller
	// Name and Role: "" means the source has none (an existing user keeps
	// theirs; a new user gets no name and ImportOptions.DefaultRole).
	Name string
	Role string
	// EmailVerified true verifies the address; false leaves it as it is.
	EmailVerified bool
	// PasswordHash is a hash the caller checked Gatehouse can verify; ""
	// means none (an existing user keeps theirs).
	PasswordHash string
	CreatedAt    time.Time // zero means now
	// LockedUntil is the source's sign-in lock; carried over when after now.
	LockedUntil time.Time
	// Links are accounts at upstream identity providers to link to the user.
	Links []ImportLink
}

// ImportLink is an upstream account to link (LinkedIdentity's key).
type ImportLink struct {
	Upstream string
	Subject  string
}

// ImportResult says what an import did with one user.
type ImportResult string

// Import results.
const (
	ImportCreated   ImportResult = "created"
	ImportUpdated   ImportResult = "updated"
	ImportUnchanged ImportResult = "unchanged"
	ImportSkipped   ImportResult = "skipped"
)

// Skip reasons ApplyImport decides (callers decide the others, such as an
// invalid email, before a row reaches the store).
const (
	// ImportIDCollision: MatchByID, and the ID is a user with another email.
	ImportIDCollision = "id_collision"
	// ImportEmailHasOtherID: MatchByID, and the email is a user with another ID.
	ImportEmailHasOtherID = "email_has_other_id"
	// ImportUnverifiedJoin: the email is an account no import gave or
	// matched before, and the source has not verified that address.
	ImportUnverifiedJoin = "unverified_email_of_existing_user"
)

// What ImportOutcome.Changed names.
const (
	ImportChangedName     = "name"
	ImportChangedRole     = "role"
	ImportChangedVerified = "email_verified"
	ImportChangedPassword = "password"
	ImportChangedLock     = "lock"
	// ImportChangedLink is followed by ":" and the upstream ("link:github").
	ImportChangedLink = "link"
)

// ImportOutcome is what ImportUsers did with one ImportUser.
type ImportOutcome struct {
	Result ImportResult
	UserID string // the Gatehouse user; "" when skipped
	Reason string // why, when skipped
	// Changed names what was written for an existing user (ImportChanged…).
	Changed []string
	// PasswordKept: the source's hash differs from the user's, which was set
	// in Gatehouse after the last import and so stays.
	PasswordKept bool
	// LockCarried: the source's lock was carried over by this run.
	LockCarried bool
	// RoleKept: the source's role differs from the user's, which was
	// changed in Gatehouse after the last import and so stays.
	RoleKept bool
	// Linked are the links this run made; LinkConflicts the upstream
	// accounts left alone because another user has them.
	Linked        []ImportLink
	LinkConflicts []ImportLink

	role string // the role a created user got, for the record
}

// ImportOptions are the settings of one ImportUsers call.
type ImportOptions struct {
	Now time.Time
	// DefaultRole is a new user's role when the source gives none.
	DefaultRole string
	// DryRun: do everything, then roll back. The outcomes are what a real
	// run would report; nothing is written.
	DryRun bool
}

// ImportRecord is what the store remembers of a user's last import, so that
// a later run applies what changed in the source and nothing else.
type ImportRecord struct {
	UserID   string
	SourceID string
	// PasswordSHA256 is the SHA-256 of the password hash the import gave the
	// user (never the hash itself: once the user moves on, the old hash is
	// gone from the store); nil when it gave none.
	PasswordSHA256 []byte
	// LockedUntil is the source's lock last carried over; zero for none.
	LockedUntil time.Time
	// Role is the role the import gave the user; "" in records older than
	// the column (the role then follows the source).
	Role       string
	ImportedAt time.Time
}

// ImportTx is what a backend offers ApplyImport inside its transaction.
type ImportTx interface {
	GetUser(ctx context.Context, id string) (*User, error)                     // ErrNotFound
	GetUserByEmail(ctx context.Context, email string) (*User, error)           // ErrNotFound
	CreateUser(ctx context.Context, u *User) error                             // ErrConflict
	UpdateImportedUser(ctx context.Context, u *User) error                     // name, role, email_verified, password_hash, updated_at
	GetImportRecord(ctx context.Context, userID string) (*ImportRecord, error) // ErrNotFound
	PutImportRecord(ctx context.Context, r *ImportRecord) error                // insert or replace
	// LoginLockedUntil returns the lock of a lockout key; zero for none.
	LoginLockedUntil(ctx context.Context, key string) (time.Time, error)
	// LockLogin sets the key's lock to until (creating its row), keeping
	// its failure count.
	LockLogin(ctx context.Context, key string, until, now time.Time) error
	GetLinkedIdentity(ctx context.Context, upstream, subject string) (*LinkedIdentity, error) // ErrNotFound
	LinkIdentity(ctx context.Context, l *LinkedIdentity) error
}

// ErrDryRun is what a backend's ImportUsers returns from its transaction
// function on a dry run, to roll back; it never reaches the caller.
var ErrDryRun = errors.New("dry run: roll back")

// ApplyImport applies users in order through tx (see the rules above) and
// returns one outcome per user. A backend calls it inside one transaction.
func ApplyImport(ctx context.Context, tx ImportTx, users []ImportUser, opt ImportOptions) ([]ImportOutcome, error) {
	out := make([]ImportOutcome, 0, len(users))
	now := opt.Now.UTC().Truncate(time.Millisecond)
	for i := range users {
		o, err := applyOne(ctx, tx, &users[i], now, opt.DefaultRole)
		if err != nil {
			return nil, fmt.Errorf("import user %d of the batch: %w", i+1, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func applyOne(ctx context.Context, tx ImportTx, u *ImportUser, now time.Time, defaultRole string) (ImportOutcome, error) {
	existing, reason, err := findImported(ctx, tx, u)
	if err != nil || reason != "" {
		return ImportOutcome{Result: ImportSkipped, Reason: reason}, err
	}
	var rec *ImportRecord
	if existing != nil {
		if rec, err = tx.GetImportRecord(ctx, existing.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return ImportOutcome{}, err
		}
		if rec == nil && !u.EmailVerified {
			return ImportOutcome{Result: ImportSkipped, Reason: ImportUnverifiedJoin}, nil
		}
	}
	want := ImportRecord{SourceID: u.SourceID, ImportedAt: now}
	if rec != nil {
		want.PasswordSHA256, want.LockedUntil, want.Role = rec.PasswordSHA256, rec.LockedUntil, rec.Role
	}
	var o ImportOutcome
	if existing == nil {
		o, err = createImported(ctx, tx, u, now, defaultRole)
		want.Role = o.role
		if u.PasswordHash != "" {
			want.PasswordSHA256 = fingerprint(u.PasswordHash)
		}
	} else {
		o, err = updateImported(ctx, tx, existing, u, rec, now, &want)
	}
	if err != nil {
		return ImportOutcome{}, err
	}
	want.UserID = o.UserID
	if err := carryLock(ctx, tx, u, now, &want, &o); err != nil {
		return ImportOutcome{}, err
	}
	if err := linkImported(ctx, tx, u, o.UserID, now, &o); err != nil {
		return ImportOutcome{}, err
	}
	if rec == nil || !sameRecord(rec, &want) {
		if err := tx.PutImportRecord(ctx, &want); err != nil {
			return ImportOutcome{}, err
		}
	}
	switch {
	case o.Result == ImportCreated:
		o.Changed = nil // everything was written
	case len(o.Changed) > 0:
		o.Result = ImportUpdated
	default:
		o.Result = ImportUnchanged
	}
	return o, nil
}

// findImported returns the user u is about (nil for a new one), or the
// reason to skip u.
func findImported(ctx context.Context, tx ImportTx, u *ImportUser) (*User, string, error) {
	byEmail, err := tx.GetUserByEmail(ctx, u.Email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", err
	}
	if !u.MatchByID {
		return byEmail, "", nil
	}
	byID, err := tx.GetUser(ctx, u.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", err
	}
	switch {
	case byID != nil && byID.Email != u.Email:
		return nil, ImportIDCollision, nil
	case byID == nil && byEmail != nil:
		return nil, ImportEmailHasOtherID, nil
	}
	return byID, "", nil
}

func createImported(ctx context.Context, tx ImportTx, u *ImportUser, now time.Time, defaultRole string) (ImportOutcome, error) {
	nu := &User{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, EmailVerified: u.EmailVerified,
		PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: now,
	}
	if nu.Role == "" {
		nu.Role = defaultRole
	}
	if nu.CreatedAt.IsZero() {
		nu.CreatedAt = now
	}
	if err := tx.CreateUser(ctx, nu); err != nil {
		return ImportOutcome{}, err
	}
	return ImportOutcome{Result: ImportCreated, UserID: nu.ID, role: nu.Role}, nil
}

// updateImported writes what the source changed about an existing user and
// records in want the password fingerprint the next run compares with.
func updateImported(ctx context.Context, tx ImportTx, cur *User, u *ImportUser, rec *ImportRecord, now time.Time, want *ImportRecord) (ImportOutcome, error) {
	o := ImportOutcome{UserID: cur.ID}
	next := *cur
	if u.Name != "" && u.Name != cur.Name {
		next.Name = u.Name
		o.Changed = append(o.Changed, ImportChangedName)
	}
	switch {
	case u.Role == "":
	case u.Role == cur.Role:
		want.Role = u.Role
	case rec == nil || rec.Role == "" || rec.Role == cur.Role:
		next.Role = u.Role
		want.Role = u.Role
		o.Changed = append(o.Changed, ImportChangedRole)
	default:
		o.RoleKept = true
	}
	if u.EmailVerified && !cur.EmailVerified {
		next.EmailVerified = true
		o.Changed = append(o.Changed, ImportChangedVerified)
	}
	switch {
	case u.PasswordHash == "":
	case u.PasswordHash == cur.PasswordHash:
		want.PasswordSHA256 = fingerprint(u.PasswordHash)
	case cur.PasswordHash == "" || (rec != nil && bytes.Equal(rec.PasswordSHA256, fingerprint(cur.PasswordHash))):
		next.PasswordHash = u.PasswordHash
		want.PasswordSHA256 = fingerprint(u.PasswordHash)
		o.Changed = append(o.Changed, ImportChangedPassword)
	default:
		o.PasswordKept = true
	}
	if len(o.Changed) > 0 {
		next.UpdatedAt = now
		if err := tx.UpdateImportedUser(ctx, &next); err != nil {
			return ImportOutcome{}, err
		}
	}
	return o, nil
}

// carryLock locks the user's sign-in (keyed by the normalised email, as the
// sign-in page counts failures) until the source's lock ends, once per lock.
func carryLock(ctx context.Context, tx ImportTx, u *ImportUser, now time.Time, want *ImportRecord, o *ImportOutcome) error {
	until := u.LockedUntil.UTC().Truncate(time.Millisecond)
	if !until.After(now) || until.Equal(want.LockedUntil.Truncate(time.Millisecond)) {
		return nil
	}
	want.LockedUntil = until
	cur, err := tx.LoginLockedUntil(ctx, u.Email)
	if err != nil {
		return err
	}
	if !cur.Before(until) {
		return nil // Gatehouse's own lock lasts longer
	}
	if err := tx.LockLogin(ctx, u.Email, until, now); err != nil {
		return err
	}
	o.LockCarried = true
	o.Changed = append(o.Changed, ImportChangedLock)
	return nil
}

// linkImported links the user's upstream accounts that are not linked yet.
func linkImported(ctx context.Context, tx ImportTx, u *ImportUser, userID string, now time.Time, o *ImportOutcome) error {
	for _, l := range u.Links {
		prev, err := tx.GetLinkedIdentity(ctx, l.Upstream, l.Subject)
		switch {
		case err == nil && prev.UserID == userID:
			continue
		case err == nil:
			o.LinkConflicts = append(o.LinkConflicts, l)
			continue
		case !errors.Is(err, ErrNotFound):
			return err
		}
		err = tx.LinkIdentity(ctx, &LinkedIdentity{Upstream: l.Upstream, Subject: l.Subject, UserID: userID, CreatedAt: now})
		if err != nil {
			return err
		}
		o.Linked = append(o.Linked, l)
		o.Changed = append(o.Changed, ImportChangedLink+":"+l.Upstream)
	}
	return nil
}

func fingerprint(hash string) []byte {
	s := sha256.Sum256([]byte(hash))
	return s[:]
}

func sameRecord(a, b *ImportRecord) bool {
	return a.SourceID == b.SourceID && a.Role == b.Role && bytes.Equal(a.PasswordSHA256, b.PasswordSHA256) &&
		a.LockedUntil.Truncate(time.Millisecond).Equal(b.LockedUntil.Truncate(time.Millisecond))
}
