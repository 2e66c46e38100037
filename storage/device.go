package storage

import (
	"context"
	"time"
)

// Device authorization grant (RFC 8628): a device without a browser asks
// for a device code and a user code; a person enters the user code on the
// /device page, signs in and approves or denies; the device polls the
// token endpoint with the device code until then.

// States of a DeviceAuthorization.
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
)

// DeviceAuthorization is one device authorization request and what became
// of it. The device code is kept as its SHA-256 only; the user code is kept
// normalised (upper case, no dash), unique among the stored requests.
type DeviceAuthorization struct {
	// ID is random; it becomes the ID of the grant the device's tokens
	// belong to, so a device code yields at most one grant.
	ID             string
	DeviceCodeHash []byte
	UserCode       string
	ClientID       string
	Scopes         []string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// Interval is the least time between two polls, in seconds; it grows
	// by 5 with every poll that came too early (RFC 8628 §3.5 slow_down).
	Interval int
	// Polls counts the polls recorded, the version RecordDevicePoll
	// compares: of two concurrent polls one is recorded, the other is
	// told to slow down.
	Polls        int64
	LastPolledAt *time.Time

	// State is DevicePending until a person decides (DecideDeviceAuthorization).
	State string
	// Set with the decision: who approved (or denied), and the sign-in
	// the approval rests on (as a completed AuthRequest's fields).
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	IDP       string
	DecidedAt *time.Time
	// RedeemedAt is when the device code was exchanged for tokens.
	RedeemedAt *time.Time
}

// DeviceAuthorizations stores device authorization requests.
type DeviceAuthorizations interface {
	// CreateDeviceAuthorization stores d (pending, no polls): ErrConflict
	// when its ID, device code hash or user code is taken (the caller
	// draws another user code), ErrNotFound when its client does not exist.
	CreateDeviceAuthorization(ctx context.Context, d *DeviceAuthorization) error
	// GetDeviceAuthorization returns the request with the device code hash;
	// ErrNotFound when there is none. Expiry is the caller's check.
	GetDeviceAuthorization(ctx context.Context, deviceCodeHash []byte) (*DeviceAuthorization, error)
	// GetDeviceAuthorizationByUserCode returns the request with the
	// (normalised) user code; ErrNotFound when there is none. Expiry and
	// state are the caller's checks.
	GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (*DeviceAuthorization, error)
	// DecideDeviceAuthorization records a person's decision on request id:
	// d.State (DeviceApproved or DeviceDenied) and, for an approval,
	// d.UserID, SessionID, AuthTime, AMR and IDP, with DecidedAt now. Only a
	// pending request that has not expired at now is decided, in one
	// statement: ErrNotFound otherwise (decided before, expired, unknown),
	// so of two concurrent decisions exactly one counts.
	DecideDeviceAuthorization(ctx context.Context, id string, d *DeviceAuthorization, now time.Time) error
	// RecordDevicePoll records a poll of request id at now with the
	// interval from now on, if the request still has seenPolls polls
	// (compare-and-set): ErrConflict when another poll was recorded since
	// the caller read it, ErrNotFound when there is no such request.
	RecordDevicePoll(ctx context.Context, id string, seenPolls int64, interval int, now time.Time) error
	// RedeemDeviceAuthorization marks the approved request id redeemed at
	// now, once: ErrConflict when it was redeemed before, ErrNotFound when
	// there is no such approved request. Of concurrent calls exactly one
	// succeeds.
	RedeemDeviceAuthorization(ctx context.Context, id string, now time.Time) error
}
