package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	return createUser(ctx, s.pool, "postgres: create user", u)
}

// createUser is CreateUser on the pool or in a transaction (an import).
func createUser(ctx context.Context, db execer, what string, u *storage.User) error {
	_, err := db.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)`,
		u.ID, u.Email, u.Name, u.Role, u.EmailVerified, u.PasswordHash, u.CreatedAt, u.UpdatedAt, u.DisabledAt)
	if err != nil {
		return wrapErr(what, err)
	}
	u.Version = 1
	return nil
}

// GetUser returns the user with id.
func (s *Store) GetUser(ctx context.Context, id string) (*storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	return u, wrapErr("postgres: get user", err)
}

// GetUserByEmail returns the user whose stored email equals email exactly.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	return u, wrapErr("postgres: get user by email", err)
}

// SearchUsers returns a page of users ordered by (email, id) in byte order
// (COLLATE "C", served by users_email_c_idx), the order SQLite gives, so
// both backends page alike whatever the database's collation.
func (s *Store) SearchUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, error) {
	const what = "postgres: search users"
	if q.Limit <= 0 {
		return nil, errors.New(what + ": the limit must be positive")
	}
	return s.queryUsers(ctx, what, `SELECT `+userColumns+` FROM users
		WHERE ($1 = '' OR starts_with(email, $1) OR strpos(lower(name), lower($1)) > 0)
		  AND (email COLLATE "C", id COLLATE "C") > ($2, $3)
		ORDER BY email COLLATE "C", id COLLATE "C" LIMIT $4`, q.Search, q.AfterEmail, q.AfterID, q.Limit)
}

func (s *Store) queryUsers(ctx context.Context, what, query string, args ...any) ([]storage.User, error) {
	rows, err := s.pool.Query(ctx, query, args...)
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
	const what = "postgres: update user"
	var version int64
	err := s.pool.QueryRow(ctx, `UPDATE users SET name = $1, role = $2, email_verified = $3, password_hash = $4,
		disabled_at = $5, updated_at = $6, version = version + 1
		WHERE id = $7 AND version = $8 RETURNING version`,
		u.Name, u.Role, u.EmailVerified, u.PasswordHash, u.DisabledAt, u.UpdatedAt, u.ID, u.Version).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		var one int
		err = s.pool.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1`, u.ID).Scan(&one)
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
	return execOne(ctx, s.pool, "postgres: update user password",
		`UPDATE users SET password_hash = $1, updated_at = $2, version = version + 1 WHERE id = $3`, passwordHash, now, id)
}

// SetUserEmailVerified records whether the user proved control of the email.
func (s *Store) SetUserEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: set user email verified",
		`UPDATE users SET email_verified = $1, updated_at = $2, version = version + 1 WHERE id = $3`, verified, now, id)
}

// DeleteUser deletes the user; the schema's ON DELETE CASCADE removes the
// user's sessions, grants (and their refresh tokens), consents, auth requests,
// linked identities, passkeys, WebAuthn user handle, TOTP and recovery codes.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return execOne(ctx, s.pool, "postgres: delete user", `DELETE FROM users WHERE id = $1`, id)
}

// UpdateUserEmail replaces the user's email (as given: callers normalise it)
// and its verified flag; ErrConflict if another user has the address.
func (s *Store) UpdateUserEmail(ctx context.Context, id, email string, verified bool, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: update user email",
		`UPDATE users SET email = $1, email_verified = $2, updated_at = $3, version = version + 1 WHERE id = $4`, email, verified, now, id)
}
