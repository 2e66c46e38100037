package op

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when an SSO
// session ends, every client that received tokens in it and registered a
// back-channel logout URI gets a logout token. The deliveries go through
// the store's outbox (durable: a crash or restart loses none) and are sent
// by a backchannel.Worker run by the instance holding the background lock;
// the page that ended the session never waits on a client.

// deliveryWindow is how long a delivery is retried before it is given up.
const deliveryWindow = 24 * time.Hour

// EndSession implements login.Flow: it ends one session (SessionEnder.EndSession).
func (p *Provider) EndSession(ctx context.Context, sess *storage.Session, reason string) (bool, error) {
	return p.sessions.EndSession(ctx, sess, reason)
}

// EndUserSessions implements login.Flow: it ends every session and grant
// of the user (SessionEnder.EndUserSessions).
func (p *Provider) EndUserSessions(ctx context.Context, userID, reason string) (int, error) {
	return p.sessions.EndUserSessions(ctx, userID, reason)
}

// EndExpiredSessions ends sessions past their expiry, telling their apps;
// the cleanup job runs it.
func (p *Provider) EndExpiredSessions(ctx context.Context) (int, error) {
	return p.sessions.EndExpiredSessions(ctx)
}

// WakeLogoutDeliveries makes the running sender (RunLogoutDeliveries) start
// a round now instead of at its next tick: the deliveries due by then go out
// at once. It never blocks; a session ending here does it by itself.
func (p *Provider) WakeLogoutDeliveries() {
	if p.logoutWorker != nil {
		p.logoutWorker.Wake()
	}
}

// QueueSessionLogout queues a logout token for each client of sess with a
// back-channel logout URI and returns how many. The server's worker sends
// them; commands that end sessions (gatehouse users …) call this too, and a
// running server picks the deliveries up within seconds.
func QueueSessionLogout(ctx context.Context, store storage.Store, minter *backchannel.Minter, now time.Time, sess *storage.Session, reason string) (int, error) {
	ids, err := store.ClientsOfSession(ctx, sess.ID)
	if err != nil {
		return 0, fmt.Errorf("clients of session: %w", err)
	}
	var ds []storage.LogoutDelivery
	for _, id := range ids {
		c, err := store.GetClient(ctx, id)
		if err != nil {
			continue // deleted since: nobody to tell
		}
		if c.BackchannelLogoutURI == "" {
			continue
		}
		// The stored token is the first attempt's; the worker mints a
		// fresh one for each retry (a logout token lives 2 minutes).
		token, _, err := minter.Mint(c.ID, jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg), sess.UserID, sess.ID, c.BackchannelLogoutSessionRequired)
		if err != nil {
			return 0, fmt.Errorf("mint logout token for %s: %w", c.ID, err)
		}
		ds = append(ds, storage.LogoutDelivery{
			ID: rand.Text(), ClientID: c.ID, URI: c.BackchannelLogoutURI, Token: token,
			UserID: sess.UserID, SessionID: sess.ID, Reason: reason,
			CreatedAt: now, NextAttemptAt: now, ExpiresAt: now.Add(deliveryWindow),
		})
	}
	if len(ds) == 0 {
		return 0, nil
	}
	if err := store.EnqueueLogoutDeliveries(ctx, ds); err != nil {
		return 0, fmt.Errorf("queue logout deliveries: %w", err)
	}
	return len(ds), nil
}

// RunLogoutDeliveries sends queued logout tokens until ctx ends, every
// interval and whenever a session ends, under the store's background lock
// (one instance sends).
func (p *Provider) RunLogoutDeliveries(ctx context.Context, every time.Duration) {
	p.logoutWorker.Run(ctx, every)
}

// outboxAdapter is the store's outbox as backchannel.Worker sees it.
type outboxAdapter struct{ store storage.Store }

func (o outboxAdapter) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]backchannel.Delivery, error) {
	ds, err := o.store.ClaimLogoutDeliveries(ctx, now, limit, lease)
	if err != nil {
		return nil, err
	}
	out := make([]backchannel.Delivery, 0, len(ds))
	algs := map[string]jose.SignatureAlgorithm{} // a session's end often owes one client several tokens
	for _, d := range ds {
		alg, ok := algs[d.ClientID]
		if !ok {
			// The client's algorithm now, as for its ID tokens. A client
			// deleted since gets the default: its receiver may still be
			// owed the logout.
			if c, err := o.store.GetClient(ctx, d.ClientID); err == nil {
				alg = jose.SignatureAlgorithm(c.IDTokenSignedResponseAlg)
			} else if !errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("client of logout delivery %s: %w", d.ID, err)
			}
			algs[d.ClientID] = alg
		}
		out = append(out, backchannel.Delivery{
			ID: d.ID, ClientID: d.ClientID, URI: d.URI, Token: d.Token, Subject: d.UserID, SessionID: d.SessionID,
			Algorithm: alg, Attempts: d.Attempts, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
		})
	}
	return out, nil
}

func (o outboxAdapter) Complete(ctx context.Context, id string, at time.Time, status int) error {
	return o.store.CompleteLogoutDelivery(ctx, id, at, status)
}

func (o outboxAdapter) Retry(ctx context.Context, id string, at time.Time, status int, errText string, next time.Time) error {
	return o.store.RetryLogoutDelivery(ctx, id, at, status, errText, next)
}

func (o outboxAdapter) GiveUp(ctx context.Context, id string, at time.Time, status int, errText string) error {
	return o.store.GiveUpLogoutDelivery(ctx, id, at, status, errText)
}
