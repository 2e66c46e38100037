package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

const sessionColumns = `id, token_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at, idle_expires_at, idp, user_agent, ip`

func scanSession(row rowScanner) (*storage.Session, error) {
	var s storage.Session
	err := row.Scan(&s.ID, &s.TokenHash, &s.UserID, timeCol{&s.AuthTime}, &s.AMR,
		timeCol{&s.CreatedAt}, timeCol{&s.LastSeenAt}, timeCol{&s.ExpiresAt}, timeCol{&s.IdleExpiresAt}, &s.IDP, &s.UserAgent, &s.IP)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// CreateSession inserts sess, cleaned (storage.Session.Clean); ErrConflict
// if its ID or token hash is taken.
func (s *Store) CreateSession(ctx context.Context, sess *storage.Session) error {
	sess.Clean()
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		sess.ID, sess.TokenHash, sess.UserID, sess.AuthTime, list(sess.AMR), sess.CreatedAt,
		sess.LastSeenAt, sess.ExpiresAt, sess.IdleExpiresAt, sess.IDP, sess.UserAgent, sess.IP)
	return wrapErr("postgres: create session", err)
}

// RenewSession replaces the live session's cookie, sign-in and expiries.
func (s *Store) RenewSession(ctx context.Context, sess *storage.Session, now time.Time) error {
	sess.Clean()
	return execOne(ctx, s.pool, "postgres: renew session", `UPDATE sessions SET token_hash = $1, auth_time = $2, amr = $3, idp = $4,
		last_seen_at = $5, expires_at = $6, idle_expires_at = $7, user_agent = $11, ip = $12
		WHERE id = $8 AND user_id = $9 AND expires_at > $10 AND idle_expires_at > $10`,
		sess.TokenHash, sess.AuthTime, list(sess.AMR), sess.IDP, sess.LastSeenAt, sess.ExpiresAt,
		sess.IdleExpiresAt, sess.ID, sess.UserID, now, sess.UserAgent, sess.IP)
}

// GetSessionByTokenHash returns the session whose cookie hashes to tokenHash.
// Expiry is the caller's check.
func (s *Store) GetSessionByTokenHash(ctx context.Context, tokenHash []byte) (*storage.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE token_hash = $1`, tokenHash))
	return sess, wrapErr("postgres: get session by token hash", err)
}

// sessionWithUserQuery reads a session, its user and whether the user has
// a second factor (as HasSecondFactor) in one statement.
var sessionWithUserQuery = `SELECT ` + storage.Qualify("s", sessionColumns) + `, ` + storage.Qualify("u", userColumns) + `,
		EXISTS (SELECT 1 FROM totp_factors WHERE user_id = u.id)
			OR EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = u.id)
	FROM sessions s JOIN users u ON u.id = s.user_id
	WHERE s.token_hash = $1`

// GetSessionWithUser implements storage.Store.
func (s *Store) GetSessionWithUser(ctx context.Context, tokenHash []byte) (*storage.SessionWithUser, error) {
	var r storage.SessionWithUser
	err := storage.ScanJoined(s.pool.QueryRow(ctx, sessionWithUserQuery, tokenHash),
		func(row storage.RowScanner) (err error) { r.Session, err = scanSession(row); return err },
		func(row storage.RowScanner) (err error) { r.User, err = scanUser(row); return err },
		func(row storage.RowScanner) error { return row.Scan(&r.HasSecondFactor) })
	if err != nil {
		return nil, wrapErr("postgres: get session with user", err)
	}
	return &r, nil
}

// GetSession returns the session with id.
func (s *Store) GetSession(ctx context.Context, id string) (*storage.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	return sess, wrapErr("postgres: get session", err)
}

// TouchSession records use of the session and moves its idle expiry.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idleExpiresAt time.Time) error {
	return execOne(ctx, s.pool, "postgres: touch session",
		`UPDATE sessions SET last_seen_at = $1, idle_expires_at = LEAST($2, expires_at)
			WHERE id = $3 AND expires_at > $1 AND idle_expires_at > $1`, lastSeen, idleExpiresAt, id)
}

// DeleteSession deletes the session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	const what = "postgres: delete session"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM auth_requests WHERE session_id = $1 AND code_used_at IS NULL`, id); err != nil {
			return wrapErr(what, err)
		}
		return execOne(ctx, tx, what, `DELETE FROM sessions WHERE id = $1`, id)
	})
}

// DeleteSessionsByUser deletes every session of the user (none is not an error).
func (s *Store) DeleteSessionsByUser(ctx context.Context, userID string) error {
	const what = "postgres: delete sessions by user"
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM auth_requests WHERE user_id = $1 AND code_used_at IS NULL`, userID); err != nil {
			return wrapErr(what, err)
		}
		_, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		return wrapErr(what, err)
	})
}

// UpdateSessionAuth replaces the session's authentication methods and time.
func (s *Store) UpdateSessionAuth(ctx context.Context, id string, amr []string, authTime time.Time) error {
	return execOne(ctx, s.pool, "postgres: update session auth",
		`UPDATE sessions SET amr = $1, auth_time = $2 WHERE id = $3`, list(amr), authTime, id)
}

// ListSessionsByUser returns the user's sessions, newest first.
func (s *Store) ListSessionsByUser(ctx context.Context, userID string) ([]storage.Session, error) {
	const what = "postgres: list sessions by user"
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []storage.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, *sess)
	}
	return out, wrapErr(what, rows.Err())
}

// ListExpiredSessions returns up to limit sessions past either expiry.
func (s *Store) ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]storage.Session, error) {
	const what = "postgres: list expired sessions"
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE expires_at <= $1 OR idle_expires_at <= $1 ORDER BY expires_at, id LIMIT $2`, now, limit)
	if err != nil {
		return nil, wrapErr(what, err)
	}
	defer rows.Close()
	var out []storage.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, wrapErr(what, err)
		}
		out = append(out, *sess)
	}
	return out, wrapErr(what, rows.Err())
}
