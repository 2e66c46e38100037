package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/storage"
)

const deviceColumns = `id, device_code_hash, user_code, client_id, scopes, created_at, expires_at,
	interval_seconds, polls, last_polled_at, state, COALESCE(user_id, ''), session_id, auth_time, amr, idp,
	decided_at, redeemed_at`

func scanDevice(row rowScanner) (*storage.DeviceAuthorization, error) {
	var d storage.DeviceAuthorization
	err := row.Scan(&d.ID, &d.DeviceCodeHash, &d.UserCode, &d.ClientID, &d.Scopes,
		timeCol{&d.CreatedAt}, timeCol{&d.ExpiresAt}, &d.Interval, &d.Polls, timePtrCol{&d.LastPolledAt},
		&d.State, &d.UserID, &d.SessionID, timeCol{&d.AuthTime}, &d.AMR, &d.IDP,
		timePtrCol{&d.DecidedAt}, timePtrCol{&d.RedeemedAt})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// CreateDeviceAuthorization stores a new, pending request.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d *storage.DeviceAuthorization) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO device_authorizations
		(id, device_code_hash, user_code, client_id, scopes, created_at, expires_at, interval_seconds, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.DeviceCodeHash, d.UserCode, d.ClientID, list(d.Scopes), d.CreatedAt, d.ExpiresAt,
		d.Interval, storage.DevicePending)
	return wrapErr("postgres: create device authorization", err)
}

func (s *Store) GetDeviceAuthorization(ctx context.Context, deviceCodeHash []byte) (*storage.DeviceAuthorization, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE device_code_hash = $1`, deviceCodeHash))
	return d, wrapErr("postgres: get device authorization", err)
}

func (s *Store) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (*storage.DeviceAuthorization, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE user_code = $1`, userCode))
	return d, wrapErr("postgres: get device authorization by user code", err)
}

// DecideDeviceAuthorization decides a pending, live request in one
// statement: concurrent decisions queue on the row lock and re-check the
// state after the first commits, so a second decision changes nothing.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, id string, d *storage.DeviceAuthorization, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE device_authorizations
		SET state = $1, user_id = $2, session_id = $3, auth_time = $4, amr = $5, idp = $6, decided_at = $7
		WHERE id = $8 AND state = 'pending' AND expires_at > $7`,
		d.State, nullIfEmpty(d.UserID), d.SessionID, optTime(d.AuthTime), list(d.AMR), d.IDP, now, id)
	return oneRow("postgres: decide device authorization", tag, err, storage.ErrNotFound)
}

// RecordDevicePoll is a compare-and-set on the poll count.
func (s *Store) RecordDevicePoll(ctx context.Context, id string, seenPolls int64, interval int, now time.Time) error {
	const what = "postgres: record device poll"
	tag, err := s.pool.Exec(ctx, `UPDATE device_authorizations
		SET polls = polls + 1, last_polled_at = $1, interval_seconds = $2 WHERE id = $3 AND polls = $4`,
		now, interval, id, seenPolls)
	if err := oneRow(what, tag, err, storage.ErrConflict); !errors.Is(err, storage.ErrConflict) {
		return err
	}
	if _, _, err := s.deviceState(ctx, id); err != nil {
		return wrapErr(what, err)
	}
	return fmt.Errorf("%s: polled meanwhile: %w", what, storage.ErrConflict)
}

// RedeemDeviceAuthorization marks an approved request redeemed, once.
func (s *Store) RedeemDeviceAuthorization(ctx context.Context, id string, now time.Time) error {
	const what = "postgres: redeem device authorization"
	tag, err := s.pool.Exec(ctx, `UPDATE device_authorizations SET redeemed_at = $1
		WHERE id = $2 AND state = 'approved' AND redeemed_at IS NULL`, now, id)
	if err := oneRow(what, tag, err, storage.ErrConflict); !errors.Is(err, storage.ErrConflict) {
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
	err = s.pool.QueryRow(ctx, `SELECT state, redeemed_at FROM device_authorizations WHERE id = $1`, id).
		Scan(&state, timePtrCol{&at})
	return state, at != nil, err
}

// oneRow checks that a statement changed exactly one row: none is noneErr.
func oneRow(what string, tag pgconn.CommandTag, err error, noneErr error) error {
	if err != nil {
		return wrapErr(what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, noneErr)
	}
	return nil
}
