// Package admin is the one service layer for administering Gatehouse:
// users, clients and signing keys. The CLI uses it today; the admin API and
// the console are to sit on it too, so the three cannot drift apart
// (docs/design.md, "Admin operations live in one service layer").
//
// Every operation takes the Actor who acts. Every change is audited here,
// once, with that actor, so no caller can forget it; reads are not audited.
// A caller's mistake comes back as an *Error with a stable Code (and the
// input at fault); anything else is a failure of the store or the service.
// Updates take an optional expected version ("" for none), the Version of
// what the caller read; when it is stale the update changes nothing and
// returns ErrVersionMismatch, which is also an ErrConflict.
//
// Imports point one way: admin uses storage, keys and login (the email and
// password rules, session apps), never the reverse; ending sessions goes
// through the SessionEnder interface, which cmd wires to op.SessionEnder.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/keys"
	"github.com/gatehouse-id/gatehouse/login/policy"
	"github.com/gatehouse-id/gatehouse/storage"
)

// SessionEnder ends sessions the one way every path does (op.SessionEnder):
// apps told by back-channel logout, grants revoked, sessions deleted.
type SessionEnder interface {
	EndSession(ctx context.Context, sess *storage.Session, reason string) (ended bool, err error)
	EndUserSessions(ctx context.Context, userID, reason string) (int, error)
}

// Hasher hashes new passwords (*password.Hasher).
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// KeyRotator rotates the signing keys (*keys.Manager).
type KeyRotator interface {
	Rotate(ctx context.Context) error
	// Algorithms are the algorithms with keys, the default first.
	Algorithms() []jose.SignatureAlgorithm
	ActiveFor(alg jose.SignatureAlgorithm) keys.ActiveKey
}

// Notifier tells a user by mail about an admin's change to their account
// (*mail.Mailer from login/mail).
type Notifier interface {
	MFAReset(ctx context.Context, to, name string)
}

// ClientCache forgets a cached client (*op.Provider).
type ClientCache interface {
	ForgetClient(id string)
}

// Config wires a Service. Store and Sessions are required; the others are
// needed only by the operations that use them (Hasher and Policy for
// passwords, Keys for keys, Notifier for the second-factor reset mail).
type Config struct {
	Store    storage.Store
	Sessions SessionEnder
	Hasher   Hasher
	// Policy is the password policy, the one the registration and reset
	// pages apply.
	Policy   policy.Password
	Keys     KeyRotator
	Notifier Notifier
	// Clients, when set, is told of every change to a client, so the
	// server's cache of clients (op.Provider) never serves a rotated
	// secret or a deleted client; another process's changes show when
	// its entries expire.
	Clients ClientCache
	// EmailKey keys the pseudonym under which an address without an
	// account appears in the audit trail (login.AuditEmailSubject).
	EmailKey [32]byte
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service runs the admin operations. It is safe for concurrent use.
type Service struct {
	store    storage.Store
	sessions SessionEnder
	hasher   Hasher
	policy   policy.Password
	keys     KeyRotator
	notifier Notifier
	clients  ClientCache
	emails   emailhash.Hasher
	now      func() time.Time
	log      *slog.Logger
}

// New returns the service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("admin: Store and Sessions are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store: cfg.Store, sessions: cfg.Sessions, hasher: cfg.Hasher, policy: cfg.Policy,
		keys: cfg.Keys, notifier: cfg.Notifier, clients: cfg.Clients, emails: emailhash.New(cfg.EmailKey),
		now: func() time.Time { return cfg.Now().UTC() }, log: cfg.Logger.With("component", "admin"),
	}, nil
}

// Actor is who acts: an admin user (UserID, through the console or with an
// access token of theirs, whose client is ClientID), a client acting for
// itself (ClientID only: a client_credentials token), or the command line
// (CLI). IP and UserAgent are the request's, recorded with the events.
type Actor struct {
	UserID    string
	ClientID  string
	IP        string
	UserAgent string
	cli       bool
	// registration: dynamic client registration (RFC 7591) with the
	// initial access token regToken ("" for an open registration).
	registration bool
	regToken     string
}

// Registration is the registration endpoint registering a client with the
// initial access token tokenID ("" when none was needed). Set IP and
// UserAgent on the result.
func Registration(tokenID string) Actor { return Actor{registration: true, regToken: tokenID} }

// ActorRegistration is the audit trail's actor for a client registered
// without an initial access token; with one it is followed by ":" and the
// token's ID.
const ActorRegistration = "registration"

// CLI is the command line on the server.
var CLI = Actor{cli: true}

// ActorClientPrefix marks a client acting for itself in the audit trail's
// actor field ("client:ops"), apart from user IDs.
const ActorClientPrefix = "client:"

// auditActor is the actor as the audit trail records it.
func (a Actor) auditActor() (string, error) {
	switch {
	case a.cli && a.UserID == "" && a.ClientID == "":
		return storage.ActorCLI, nil
	case a.cli:
		return "", errors.New("admin: the CLI actor carries no user or client")
	case a.registration && a.regToken == "":
		return ActorRegistration, nil
	case a.registration:
		return ActorRegistration + ":" + a.regToken, nil
	case a.UserID != "":
		return a.UserID, nil
	case a.ClientID != "":
		return ActorClientPrefix + a.ClientID, nil
	}
	return "", errors.New("admin: no actor")
}

// begin checks the actor before an operation; a missing one is a
// programming error, never the caller's.
func begin(a Actor) error {
	_, err := a.auditActor()
	return err
}

// audit records a change by a. The change has been made by then: a store
// that cannot take the event costs an error line in the log, not the
// operation (docs/design.md, the audit trail).
func (s *Service) audit(ctx context.Context, a Actor, ev storage.AuditEvent) {
	actor, err := a.auditActor()
	if err != nil { // checked by begin; kept visible should it ever happen
		s.log.ErrorContext(ctx, "audit event without an actor", "action", ev.Action, "err", err)
		return
	}
	ev.Time, ev.Actor, ev.IP, ev.UserAgent = s.now(), actor, a.IP, a.UserAgent
	if ev.ClientID == "" {
		ev.ClientID = a.ClientID
	}
	if err := s.store.AppendAudit(ctx, &ev); err != nil {
		s.log.ErrorContext(ctx, "audit event not recorded", "action", ev.Action, "actor", ev.Actor, "subject", ev.Subject,
			"client_id", ev.ClientID, "ip", ev.IP, "detail", ev.Detail, "err", err)
	}
}

// version is a row version as callers see it: an opaque string, usable as
// an HTTP entity tag.
// forgetClient drops client id from the server's cache after a change.
func (s *Service) forgetClient(id string) {
	if s.clients != nil {
		s.clients.ForgetClient(id)
	}
}

func version(v int64) string { return strconv.FormatInt(v, 10) }

// matches reports whether the expected version ("" for none) allows an
// update of a row at version v.
func matches(expected string, v int64) bool {
	return expected == "" || expected == version(v)
}
