package sqlite

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
	return createUser(ctx, s.q, "sqlite: create user", u)
}

// createUser is CreateUser outside or inside a transaction (an import).
func createUser(ctx context.Context, db execer, what string, u *storage.User) error {
	_, err := db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.Role, u.EmailVerified, u.PasswordHash, millis(u.CreatedAt), millis(u.UpdatedAt))
	return wrapErr(what, err)
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

// ListUsers returns every user ordered by email.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY email, id`)
	if err != nil {
		return nil, wrapErr("sqlite: list users", err)
	}
	defer rows.Close()
	var users []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapErr("sqlite: list users", err)
		}
		users = append(users, *u)
	}
	return users, wrapErr("sqlite: list users", rows.Err())
}

// UpdateUserPassword replaces the user's password hash.
func (s *Store) UpdateUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: update user password",
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, passwordHash, millis(now), id)
}

// UpdateUserRole replaces the user's role.
func (s *Store) UpdateUserRole(ctx context.Context, id, role string, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: update user role",
		`UPDATE users SET role = ?, updated_at = ? WHERE id = ?`, role, millis(now), id)
}

// SetUserEmailVerified records whether the user proved control of the email.
func (s *Store) SetUserEmailVerified(ctx context.Context, id string, verified bool, now time.Time) error {
	return execOne(ctx, s.q, "sqlite: set user email verified",
		`UPDATE users SET email_verified = ?, updated_at = ? WHERE id = ?`, verified, millis(now), id)
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
		`UPDATE users SET email = ?, email_verified = ?, updated_at = ? WHERE id = ?`, email, verified, millis(now), id)
}
