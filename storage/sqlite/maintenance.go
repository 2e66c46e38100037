package sqlite

import (
	"context"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// loginAttemptRetention is how long an unlocked login-attempt row outlives the
// last attempt it counted.
const loginAttemptRetention = 24 * time.Hour

// DeleteExpired removes rows whose expiry is at or before now, unlocked
// login-attempt rows idle for over loginAttemptRetention, and logout
// deliveries finished over storage.LogoutDeliveryRetention ago, and returns
// how many it removed. Then it gives the space back to the file system
// (Reclaim), since this is the periodic cleanup pass.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	const what = "sqlite: delete expired"
	// Child rows go before the parents that would otherwise cascade them
	// uncounted. An auth request stays while its code may still be presented,
	// so reuse of the code is recognised until the code itself expires.
	atNow := []any{millis(now)}
	cutoff := now.Add(-loginAttemptRetention)
	queries := []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM refresh_tokens WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM grants WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM auth_requests WHERE expires_at <= ?1 AND (code_expires_at IS NULL OR code_expires_at <= ?1)`, atNow},
		{`DELETE FROM denied_access_tokens WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM signing_keys WHERE state = 'retired' AND remove_after <= ?1`, atNow},
		{`DELETE FROM one_time_tokens WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM used_markers WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM pushed_requests WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM device_authorizations WHERE expires_at <= ?1`, atNow},
		{`DELETE FROM login_attempts WHERE (locked_until IS NULL OR locked_until <= ?1) AND updated_at < ?2`,
			[]any{millis(now), millis(cutoff)}},
		// Finished deliveries kept for the record. A delivery finishes after
		// it is created, so created_at < ?1 removes nothing more and lets the
		// sweep use the created_at index.
		{`DELETE FROM logout_deliveries WHERE created_at < ?1 AND (delivered_at < ?1 OR gave_up_at < ?1)`,
			[]any{millis(now.Add(-storage.LogoutDeliveryRetention))}},
	}
	var total int64
	err := s.inTx(ctx, what, func(tx *txq) error {
		for _, q := range queries {
			res, err := tx.ExecContext(ctx, q.sql, q.args...)
			if err != nil {
				return wrapErr(what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return wrapErr(what, err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, s.Reclaim(ctx)
}
