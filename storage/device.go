package storage

import (
	"context"
	"strings"
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

// UserCodeAlphabet is what user codes are made of: consonants only, no
// vowels (no words) and none of the letters people misread (RFC 8628 §6.1).
const UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// UserCodeLength is the number of letters of a user code: 20^8, about 34
// bits, which the rate limits on guessing make enough (RFC 8628 §5.1).
const UserCodeLength = 8

// NormalizeUserCode turns what a person typed ("bcdf-ghjk", "BCDF GHJK")
// into the stored form ("BCDFGHJK"): upper case, without the dash or
// spaces. ok is false when the result cannot be a user code, so a typo is
// told from an unknown code without a look-up.
func NormalizeUserCode(typed string) (code string, ok bool) {
	b := make([]byte, 0, UserCodeLength)
	for _, r := range typed {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 'Z' || r < 'A' || strings.IndexByte(UserCodeAlphabet, byte(r)) < 0 || len(b) == UserCodeLength {
			return "", false
		}
		b = append(b, byte(r))
	}
	if len(b) != UserCodeLength {
		return "", false
	}
	return string(b), true
}

// FormatUserCode shows a stored user code the way people read it: ABCD-EFGH.
func FormatUserCode(code string) string {
	if len(code) != UserCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}
