package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

const deviceColumns = `id, device_code_hash, user_code, client_id, scopes, created_at, expires_at,
	interval_seconds, polls, last_polled_at, state, user_id, session_id, auth_time, amr, idp,
	decided_at, redeemed_at`

func scanDevice(row rowScanner) (*storage.DeviceAuthorization, error) {
	var d storage.DeviceAuthorization
	err := row.Scan(&d.ID, &d.DeviceCodeHash, &d.UserCode, &d.ClientID, listCol{&d.Scopes},
		timeCol{&d.CreatedAt}, timeCol{&d.ExpiresAt}, &d.Interval, &d.Polls, timePtrCol{&d.LastPolledAt},
		&d.State, stringCol{&d.UserID}, &d.SessionID, timeCol{&d.AuthTime}, listCol{&d.AMR}, &d.IDP,
		timePtrCol{&d.DecidedAt}, timePtrCol{&d.RedeemedAt})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// CreateDeviceAuthorization stores a new, pending request.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d *storage.DeviceAuthorization) error {
	const what = "sqlite: create device authorization"
	scopes, err := jsonList(d.Scopes)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO device_authorizations
		(id, device_code_hash, user_code, client_id, scopes, created_at, expires_at, interval_seconds, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.DeviceCodeHash, d.UserCode, d.ClientID, scopes, millis(d.CreatedAt), millis(d.ExpiresAt),
		d.Interval, storage.DevicePending)
	return wrapErr(what, err)
}

func (s *Store) GetDeviceAuthorization(ctx context.Context, deviceCodeHash []byte) (*storage.DeviceAuthorization, error) {
	d, err := scanDevice(s.q.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE device_code_hash = ?`, deviceCodeHash))
	return d, wrapErr("sqlite: get device authorization", err)
}

func (s *Store) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (*storage.DeviceAuthorization, error) {
	d, err := scanDevice(s.q.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE user_code = ?`, userCode))
	return d, wrapErr("sqlite: get device authorization by user code", err)
}

// DecideDeviceAuthorization decides a pending, live request in one
// statement: its WHERE is the check, so a second decision changes nothing.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, id string, d *storage.DeviceAuthorization, now time.Time) error {
	const what = "sqlite: decide device authorization"
	amr, err := jsonList(d.AMR)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	res, err := s.q.ExecContext(ctx, `UPDATE device_authorizations
		SET state = ?1, user_id = ?2, session_id = ?3, auth_time = ?4, amr = ?5, idp = ?6, decided_at = ?7
		WHERE id = ?8 AND state = 'pending' AND expires_at > ?7`,
		d.State, nullIfEmpty(d.UserID), d.SessionID, optMillis(d.AuthTime), amr, d.IDP, millis(now), id)
	return oneRow(what, res, err, storage.ErrNotFound)
}

// RecordDevicePoll is a compare-and-set on the poll count.
func (s *Store) RecordDevicePoll(ctx context.Context, id string, seenPolls int64, interval int, now time.Time) error {
	const what = "sqlite: record device poll"
	res, err := s.q.ExecContext(ctx, `UPDATE device_authorizations
		SET polls = polls + 1, last_polled_at = ?, interval_seconds = ? WHERE id = ? AND polls = ?`,
		millis(now), interval, id, seenPolls)
	if err := oneRow(what, res, err, storage.ErrConflict); !errors.Is(err, storage.ErrConflict) {
		return err
	}
	if _, _, err := s.deviceState(ctx, id); err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: polled meanwhile: %w", what, storage.ErrConflict)
}

// RedeemDeviceAuthorization marks an approved request redeemed, once.
func (s *Store) RedeemDeviceAuthorization(ctx context.Context, id string, now time.Time) error {
	const what = "sqlite: redeem device authorization"
	res, err := s.q.ExecContext(ctx, `UPDATE device_authorizations SET redeemed_at = ?
		WHERE id = ? AND state = 'approved' AND redeemed_at IS NULL`, millis(now), id)
	if err := oneRow(what, res, err, storage.ErrConflict); !errors.Is(err, storage.ErrConflict) {
		return err
	}
	state, redeemed, err := s.deviceState(ctx, id)
	switch {
	case err != nil:
		return wrapErr(what, err)
	case state != storage.DeviceApproved || !redeemed:
		return fmt.Errorf("%s: not approved: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: redeemed before: %w", what, storage.ErrConflict)
}

// deviceState reads what a failed compare-and-set needs to explain itself.
func (s *Store) deviceState(ctx context.Context, id string) (state string, redeemed bool, err error) {
	var at *time.Time
	err = s.q.QueryRowContext(ctx, `SELECT state, redeemed_at FROM device_authorizations WHERE id = ?`, id).
		Scan(&state, timePtrCol{&at})
	return state, at != nil, err
}

// oneRow checks that an UPDATE changed exactly one row: none is noneErr.
func oneRow(what string, res interface{ RowsAffected() (int64, error) }, err error, noneErr error) error {
	if err != nil {
		return wrapErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapErr(what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, noneErr)
	}
	return nil
}
