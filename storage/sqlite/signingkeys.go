package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const signingKeyColumns = `id, algorithm, state, private_key, public_key, created_at, activated_at, retired_at, remove_after`

func scanSigningKey(row rowScanner) (*storage.SigningKey, error) {
	var k storage.SigningKey
	err := row.Scan(&k.ID, &k.Algorithm, &k.State, &k.PrivateKey, &k.PublicKey, timeCol{&k.CreatedAt},
		timePtrCol{&k.ActivatedAt}, timePtrCol{&k.RetiredAt}, timePtrCol{&k.RemoveAfter})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

func insertSigningKey(ctx context.Context, db execer, k *storage.SigningKey) error {
	_, err := db.ExecContext(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.State, k.PrivateKey, k.PublicKey, millis(k.CreatedAt),
		ptrMillis(k.ActivatedAt), ptrMillis(k.RetiredAt), ptrMillis(k.RemoveAfter))
	return err
}

// ListSigningKeys returns every key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, wrapErr("sqlite: list signing keys", err)
	}
	defer rows.Close()
	var keys []storage.SigningKey
	for rows.Next() {
		k, err := scanSigningKey(rows)
		if err != nil {
			return nil, wrapErr("sqlite: list signing keys", err)
		}
		keys = append(keys, *k)
	}
	return keys, wrapErr("sqlite: list signing keys", rows.Err())
}

// CreateSigningKey inserts k. ErrConflict if its ID is taken, or if it is
// active (or next) while another key of its algorithm already is.
func (s *Store) CreateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	return wrapErr("sqlite: create signing key", insertSigningKey(ctx, s.db, k))
}

// RotateSigningKeys retires activeID, activates nextID and inserts newNext in one
// transaction; ErrConflict if either key is no longer in the expected state
// or is of another algorithm than newNext.
func (s *Store) RotateSigningKeys(ctx context.Context, activeID, nextID string, newNext *storage.SigningKey,
	now, removeAfter time.Time) error {
	const what = "sqlite: rotate signing keys"
	return s.inTx(ctx, what, func(tx *txq) error {
		if err := execOne(ctx, tx, what+": retire active",
			`UPDATE signing_keys SET state = 'retired', retired_at = ?, remove_after = ?
			WHERE id = ? AND state = 'active' AND algorithm = ?`, millis(now), millis(removeAfter), activeID, newNext.Algorithm); err != nil {
			return stale(err, what, "active", activeID)
		}
		if err := execOne(ctx, tx, what+": activate next",
			`UPDATE signing_keys SET state = 'active', activated_at = ? WHERE id = ? AND state = 'next' AND algorithm = ?`,
			millis(now), nextID, newNext.Algorithm); err != nil {
			return stale(err, what, "next", nextID)
		}
		return wrapErr(what+": insert next", insertSigningKey(ctx, tx, newNext))
	})
}

// stale turns "no row in the expected state" into ErrConflict: another process
// rotated first.
func stale(err error, what, state, id string) error {
	if isNotFound(err) {
		return fmt.Errorf("%s: key %q is no longer %s: %w", what, id, state, storage.ErrConflict)
	}
	return err
}
