package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// ImportUsers runs storage.ApplyImport in one transaction, which holds the
// write lock from its start (IMMEDIATE), so nothing changes the users it
// reads before it commits.
func (s *Store) ImportUsers(ctx context.Context, users []storage.ImportUser, opt storage.ImportOptions) ([]storage.ImportOutcome, error) {
	const what = "sqlite: import users"
	var out []storage.ImportOutcome
	err := s.inTx(ctx, what, func(tx *txq) error {
		var err error
		if out, err = storage.ApplyImport(ctx, importTx{tx}, users, opt); err != nil {
			return err
		}
		if opt.DryRun {
			return storage.ErrDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrDryRun) {
		return nil, err
	}
	return out, nil
}

// importTx is storage.ImportTx on a transaction.
type importTx struct{ tx *txq }

func (t importTx) GetUser(ctx context.Context, id string) (*storage.User, error) {
	return getUserBy(ctx, t.tx, "sqlite: import: get user", "id", id)
}

func (t importTx) GetUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	return getUserBy(ctx, t.tx, "sqlite: import: get user by email", "email", email)
}

func (t importTx) CreateUser(ctx context.Context, u *storage.User) error {
	return createUser(ctx, t.tx, "sqlite: import: create user", u)
}

func (t importTx) UpdateImportedUser(ctx context.Context, u *storage.User) error {
	return execOne(ctx, t.tx, "sqlite: import: update user",
		`UPDATE users SET name = ?, role = ?, email_verified = ?, password_hash = ?, updated_at = ?, version = version + 1 WHERE id = ?`,
		u.Name, u.Role, u.EmailVerified, u.PasswordHash, millis(u.UpdatedAt), u.ID)
}

func (t importTx) GetImportRecord(ctx context.Context, userID string) (*storage.ImportRecord, error) {
	r := storage.ImportRecord{UserID: userID}
	err := t.tx.QueryRowContext(ctx, `SELECT source_id, password_sha256, locked_until, imported_at, role
		FROM user_imports WHERE user_id = ?`, userID).
		Scan(&r.SourceID, &r.PasswordSHA256, timeCol{&r.LockedUntil}, timeCol{&r.ImportedAt}, &r.Role)
	if err != nil {
		return nil, wrapErr("sqlite: import: get record", err)
	}
	return &r, nil
}

func (t importTx) PutImportRecord(ctx context.Context, r *storage.ImportRecord) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO user_imports (user_id, source_id, password_sha256, locked_until, imported_at, role)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET source_id = excluded.source_id, password_sha256 = excluded.password_sha256,
			locked_until = excluded.locked_until, imported_at = excluded.imported_at, role = excluded.role`,
		r.UserID, r.SourceID, optBytes(r.PasswordSHA256), optMillis(r.LockedUntil), millis(r.ImportedAt), r.Role)
	return wrapErr("sqlite: import: put record", err)
}

func (t importTx) LoginLockedUntil(ctx context.Context, key string) (time.Time, error) {
	var until time.Time
	err := t.tx.QueryRowContext(ctx, `SELECT locked_until FROM login_attempts WHERE key = ?`, key).Scan(timeCol{&until})
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return until, wrapErr("sqlite: import: get login lock", err)
}

func (t importTx) LockLogin(ctx context.Context, key string, until, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO login_attempts (key, failures, locked_until, updated_at) VALUES (?, 0, ?, ?)
		ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
		key, millis(until), millis(now))
	return wrapErr("sqlite: import: lock login", err)
}

func (t importTx) GetLinkedIdentity(ctx context.Context, upstream, subject string) (*storage.LinkedIdentity, error) {
	return getLinkedIdentity(ctx, t.tx, "sqlite: import: get linked identity", upstream, subject)
}

func (t importTx) LinkIdentity(ctx context.Context, l *storage.LinkedIdentity) error {
	return linkIdentity(ctx, t.tx, "sqlite: import: link identity", l)
}
