package postgres

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const userColumns = `id, email, name, role, email_verified, password_hash, created_at, updated_at`

func scanUser(row rowScanner) (*storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.EmailVerified, &u.PasswordHash,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u; ErrConflict if its ID or email is taken.
func (s *Store) CreateUser(ctx context.Context, u *storage.User) error {
	return createUser(ctx, s.pool, "postgres: create user", u)
}

// createUser is CreateUser on the pool or in a transaction (an import).
func createUser(ctx context.Context, db execer, what string, u *storage.User) error {
	_, err := db.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.Name, u.Role, u.EmailVerified, u.PasswordHash, u.CreatedAt, u.UpdatedAt)
	return wrapErr(what, err)
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

// ListUsers returns every user ordered by email.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY email, id`)
	if err != nil {
		return nil, wrapErr("postgres: list users", err)
	}
	defer rows.Close()
	var users []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapErr("postgres: list users", err)
		}
		users = append(users, *u)
	}
	return users, wrapErr("postgres: list users", rows.Err())
}

// UpdateUserPassword replaces the user's password hash.
func (s *Store) UpdateUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: update user password",
		`UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, passwordHash, now, id)
}

// UpdateUserRole replaces the user's role.
func (s *Store) UpdateUserRole(ctx context.Context, id, role string, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: update user role",
		`UPDATE users SET role = $1, updated_at = $2 WHERE id = $3`, role, now, id)
}

// SetUserEmailVerified records whether the user proved control of the email.
func (s *Store) SetUserEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error {
	return execOne(ctx, s.pool, "postgres: set user email verified",
		`UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3`, verified, now, id)
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
		`UPDATE users SET email = $1, email_verified = $2, updated_at = $3 WHERE id = $4`, email, verified, now, id)
}
