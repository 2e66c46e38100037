package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

// ImportUsers runs storage.ApplyImport in one transaction. The users' rows
// it reads are locked (FOR UPDATE) until commit, so a sign-in rehashing a
// password meanwhile waits rather than being overwritten by a stale view.
func (s *Store) ImportUsers(ctx context.Context, users []storage.ImportUser, opt storage.ImportOptions) ([]storage.ImportOutcome, error) {
	const what = "postgres: import users"
	var out []storage.ImportOutcome
	err := s.inTx(ctx, what, func(tx pgx.Tx) error {
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
type importTx struct{ tx pgx.Tx }

func (t importTx) GetUser(ctx context.Context, id string) (*storage.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	return u, wrapErr("postgres: import: get user", err)
}

func (t importTx) GetUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1 FOR UPDATE`, email))
	return u, wrapErr("postgres: import: get user by email", err)
}

func (t importTx) CreateUser(ctx context.Context, u *storage.User) error {
	return createUser(ctx, t.tx, "postgres: import: create user", u)
}

func (t importTx) UpdateImportedUser(ctx context.Context, u *storage.User) error {
	return execOne(ctx, t.tx, "postgres: import: update user",
		`UPDATE users SET name = $2, role = $3, email_verified = $4, password_hash = $5, updated_at = $6, version = version + 1 WHERE id = $1`,
		u.ID, u.Name, u.Role, u.EmailVerified, u.PasswordHash, u.UpdatedAt)
}

func (t importTx) GetImportRecord(ctx context.Context, userID string) (*storage.ImportRecord, error) {
	r := storage.ImportRecord{UserID: userID}
	err := t.tx.QueryRow(ctx, `SELECT source_id, password_sha256, locked_until, imported_at, role
		FROM user_imports WHERE user_id = $1`, userID).
		Scan(&r.SourceID, &r.PasswordSHA256, timeCol{&r.LockedUntil}, timeCol{&r.ImportedAt}, &r.Role)
	if err != nil {
		return nil, wrapErr("postgres: import: get record", err)
	}
	return &r, nil
}

func (t importTx) PutImportRecord(ctx context.Context, r *storage.ImportRecord) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO user_imports (user_id, source_id, password_sha256, locked_until, imported_at, role)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id) DO UPDATE SET source_id = excluded.source_id, password_sha256 = excluded.password_sha256,
			locked_until = excluded.locked_until, imported_at = excluded.imported_at, role = excluded.role`,
		r.UserID, r.SourceID, optBytes(r.PasswordSHA256), optTime(r.LockedUntil), r.ImportedAt, r.Role)
	return wrapErr("postgres: import: put record", err)
}

func (t importTx) LoginLockedUntil(ctx context.Context, key string) (time.Time, error) {
	var until time.Time
	err := t.tx.QueryRow(ctx, `SELECT locked_until FROM login_attempts WHERE key = $1 FOR UPDATE`, key).Scan(timeCol{&until})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return until, wrapErr("postgres: import: get login lock", err)
}

func (t importTx) LockLogin(ctx context.Context, key string, until, now time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO login_attempts (key, failures, locked_until, updated_at) VALUES ($1, 0, $2, $3)
		ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
		key, until, now)
	return wrapErr("postgres: import: lock login", err)
}

func (t importTx) GetLinkedIdentity(ctx context.Context, upstream, subject string) (*storage.LinkedIdentity, error) {
	return getLinkedIdentity(ctx, t.tx, "postgres: import: get linked identity", upstream, subject)
}

func (t importTx) LinkIdentity(ctx context.Context, l *storage.LinkedIdentity) error {
	return linkIdentity(ctx, t.tx, "postgres: import: link identity", l)
}
