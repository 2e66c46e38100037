package storage

import (
	"context"
	"time"
)

// LogoutDelivery is one logout token waiting to be POSTed to a client's
// back-channel logout URI, or the record of how that went. The outbox lives
// in the store so that a delivery survives a restart, and so that whichever
// instance runs the background work can send it.
type LogoutDelivery struct {
	ID       string // random
	ClientID string
	// URI is the client's back-channel logout URI when the delivery was
	// made, fixed then: a later change of the client's registration does not
	// redirect tokens already minted for the old one.
	URI   string
	Token string // the signed logout token (JWT)
	// UserID and SessionID say whose session ended. Neither refers to a row:
	// account deletion enqueues logouts for a user about to vanish.
	UserID    string
	SessionID string
	// Reason is what ended the session: "logout", "password_reset",
	// "account_deleted", "admin", "expired", …
	Reason        string
	CreatedAt     time.Time
	Attempts      int
	NextAttemptAt time.Time // when a pending delivery is due
	ExpiresAt     time.Time // given up when not delivered by then
	// LastAttemptAt is when the last attempt ended (the at of Complete,
	// Retry or GiveUp); zero before the first.
	LastAttemptAt time.Time
	LastStatus    int    // HTTP status of the last attempt; 0 for none or a transport error
	LastError     string // short text of the last failure, "" for none
	DeliveredAt   *time.Time
	GaveUpAt      *time.Time
}

// Delivery states for ListLogoutDeliveries filters.
const (
	// DeliveryPending: neither delivered nor given up (due or waiting).
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryGaveUp    = "gave_up"
)

// LogoutDeliveryRetention is how long DeleteExpired keeps a delivery after
// it was delivered or given up, so `logout-deliveries list` can still show
// what happened to a recent sign-out.
const LogoutDeliveryRetention = 7 * 24 * time.Hour

// DefaultLogoutDeliveryLimit is how many deliveries ListLogoutDeliveries
// returns when the filter sets no Limit.
const DefaultLogoutDeliveryLimit = 100

// LogoutDeliveryFilter selects deliveries for ListLogoutDeliveries. Empty
// fields select everything.
type LogoutDeliveryFilter struct {
	ClientID string
	UserID   string
	State    string // DeliveryPending, DeliveryDelivered, DeliveryGaveUp or ""
	Limit    int    // at most this many; <= 0 means DefaultLogoutDeliveryLimit
}

// LogoutOutbox is the back-channel logout outbox part of Store.
//
// A sender claims due deliveries, POSTs them, and reports each outcome with
// CompleteLogoutDelivery, RetryLogoutDelivery or GiveUpLogoutDelivery. A
// claim leases the delivery: it is not claimed again until the lease runs
// out, so two instances never send it at once, and one that crashed mid-send
// loses nothing — the delivery comes due again.
type LogoutOutbox interface {
	// EnqueueLogoutDeliveries stores ds in one transaction: all or none.
	// ErrConflict when an ID is taken (or repeated in ds); ErrNotFound when
	// a ClientID is not a client. An empty ID is an error.
	EnqueueLogoutDeliveries(ctx context.Context, ds []LogoutDelivery) error
	// ClaimLogoutDeliveries returns up to limit pending deliveries due at now
	// (NextAttemptAt <= now), oldest first (CreatedAt, then ID), and in the
	// same atomic step sets their NextAttemptAt to now+lease, as returned.
	// Concurrent callers never get the same delivery while its lease lasts.
	// Deliveries past ExpiresAt are claimed like the others, so the caller
	// gives them up and says so. limit and lease must be positive.
	ClaimLogoutDeliveries(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]LogoutDelivery, error)
	// CompleteLogoutDelivery records a successful attempt ending at at:
	// Attempts+1, LastAttemptAt, LastStatus = status, DeliveredAt = at
	// (LastError keeps the last failure, if any).
	//
	// It and the two below change only a pending delivery: ErrNotFound for
	// an unknown ID, ErrConflict for one already delivered or given up (a
	// send whose lease ran out finished elsewhere first; the first outcome
	// stands).
	CompleteLogoutDelivery(ctx context.Context, id string, at time.Time, status int) error
	// RetryLogoutDelivery records a failed attempt ending at at, to be tried
	// again at next: Attempts+1, LastAttemptAt, LastStatus, LastError,
	// NextAttemptAt = next.
	RetryLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error
	// GiveUpLogoutDelivery records a final failed attempt ending at at:
	// Attempts+1, LastAttemptAt, LastStatus, LastError, GaveUpAt = at.
	GiveUpLogoutDelivery(ctx context.Context, id string, at time.Time, status int, errText string) error
	// ListLogoutDeliveries returns the deliveries f selects, newest first
	// (CreatedAt, then ID, descending). An unknown State is an error.
	ListLogoutDeliveries(ctx context.Context, f LogoutDeliveryFilter) ([]LogoutDelivery, error)
	// CountPendingLogoutDeliveries counts the pending deliveries (neither
	// delivered nor given up, due or not), stopping at limit: the answer is
	// min(pending, limit). The bound keeps the cost of a count asked at
	// every metrics scrape fixed however far the outbox has grown; limit
	// must be positive.
	CountPendingLogoutDeliveries(ctx context.Context, limit int) (int, error)
	// ClientsOfSession returns the distinct IDs of the clients that received
	// a grant in the session (Grant.SessionID), revoked or not, in ascending
	// byte order; empty for none or an empty sessionID.
	ClientsOfSession(ctx context.Context, sessionID string) ([]string, error)
}
