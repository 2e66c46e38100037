package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const userColumns = `id, email, name, role, email_verified, password_hash, created_at, updated_at, disabled_at, version`

func scanUser(row rowScanner) (*storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.EmailVerified, &u.PasswordHash,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt}, timePtrCol{&u.DisabledAt}, &u.Version)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u at version 1; ErrConflict if its ID or email is taken.
func (s *Store) CreateUser(ctx context.Context, u *storage.User) error {
	return createUser(ctx, s.q, "sqlite: create user", u)
}

// createUser is CreateUser outside or inside a transaction (an import).
func createUser(ctx context.Context, db execer, what string, u *storage.User) error {
	_, err := db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		u.ID, u.Email, u.Name, u.Role, u.EmailVerified, u.PasswordHash, millis(u.CreatedAt), millis(u.UpdatedAt), ptrMillis(u.DisabledAt))
	if err != nil {
		return wrapErr(what, err)
	}
	u.Version = 1
	return nil
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (*storage.User, error) {
	return getUserBy(ctx, s.q, "sqlite: get user", "id", id)
}

// GetUserByEmail returns the user whose stored email equals email exactly.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	return getUserBy(ctx, s.q, "sqlite: get user by email", "email", email)
}

// getUserBy returns the user whose column (id or email, both unique) is
// value, outside or inside a transaction.
func getUserBy(ctx context.Context, db queryRower, what, column, value string) (*storage.User, error) {
	u, err := scanUser(db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+column+` = ?`, value))
	return u, wrapErr(what, err)
}

// SearchUsers returns a page of users ordered by (email, id). SQLite
// compares text byte by byte (BINARY) and lower() folds ASCII letters only.
// One constant query text for every filter, so it is prepared once.
func (s *Store) SearchUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, error) {
	const what = "sqlite: search users"
	if q.Limit <= 0 {
		return nil, errors.New(what + ": the limit must be positive")
	}
	return s.queryUsers(ctx, what, `SELECT `+userColumns+` FROM users
		WHERE (?1 = '' OR substr(email, 1, length(?1)) = ?1 OR instr(lower(name), lower(?1)) > 0)
		  AND (email, id) > (?2, ?3)
		ORDER BY email, id LIMIT ?4`, q.Search, q.AfterEmail, q.AfterID, q.Limit)
}

func (s *Store) queryUsers(ctx context.Context, what, query string, args ...any) ([]storage.User, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var users []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		users = append(users, *u)
	}
	return users, wrapErr(what, rows.Err())
}

// UpdateUser writes u's changeable fields if the stored version is still
// u.Version. When no row changed, a second look tells a missing user
// (ErrNotFound) from a changed one (ErrConflict).
func (s *Store) UpdateUser(ctx context.Context, u *storage.User) error {
	const what = "sqlite: update user"
	var version int64
	err := s.q.QueryRowContext(ctx, `UPDATE users SET name = ?, role = ?, email_verified = ?, password_hash = ?,
		disabled_at = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ? RETURNING version`,
		u.Name, u.Role, u.EmailVerified, u.PasswordHash, ptrMillis(u.DisabledAt), millis(u.UpdatedAt), u.ID, u.Version).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		err = s.q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, u.ID).Scan(&one)
		if err == nil {
			return fmt.Errorf("%s: the user was changed since it was read: %w", what, storage.ErrConflict)
		}
		return wrapErr(what, err)
	}
	if err != nil {
		return wrapErr(what, err)
	}
	u.Version = version
	return nil
}

// UpdateUserPassword replaces the user's password hash.
func (s *Store) UpdateUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: update user password",
		`UPDATE users SET password_hash = ?, updated_at = ?, version = version + 1 WHERE id = ?`, passwordHash, millis(now), id)
}

// SetUserEmailVerified records whether the user proved control of the email.
func (s *Store) SetUserEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: set user email verified",
		`UPDATE users SET email_verified = ?, updated_at = ?, version = version + 1 WHERE id = ?`, verified, millis(now), id)
}

// DeleteUser deletes the user; the schema's ON DELETE CASCADE removes the
// user's sessions, grants (and their refresh tokens), consents, auth requests,
// linked identities, passkeys, WebAuthn user handle, TOTP and recovery codes.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return execOne(ctx, s.q, "sqlite: delete user", `DELETE FROM users WHERE id = ?`, id)
}

// UpdateUserEmail replaces the user's email (as given: callers normalise it)
// and its verified flag; ErrConflict if another user has the address.
func (s *Store) UpdateUserEmail(ctx context.Context, id, email string, verified bool, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: update user email",
		`UPDATE users SET email = ?, email_verified = ?, updated_at = ?, version = version + 1 WHERE id = ?`, email, verified, millis(now), id)
}
