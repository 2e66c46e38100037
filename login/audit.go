package login

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/emailhash"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/storage"
)

// auditTimeout bounds one audit write; it runs detached from the request's
// cancellation so a browser that goes away still leaves its trace.
const auditTimeout = 5 * time.Second

// audit records ev with the time, the client's address (X-Forwarded-For only
// from Config.TrustedProxies, as for rate limits, but the full address) and
// user agent of r. It never fails the user's action: the action has already
// happened, so a store that cannot take the event costs an error log line,
// not the answer (docs/design.md).
func (h *Handler) audit(r *http.Request, ev storage.AuditEvent) {
	ev.Time = h.now()
	ev.IP = h.clientAddr(r)
	ev.UserAgent = storage.ClipUserAgent(r.UserAgent())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if ev.Actor == storage.ActorAnonymous && !h.anonymousAuditAllowed(ctx) {
		h.metrics.auditDrop()
		h.log.DebugContext(ctx, "audit event dropped: anonymous budget spent", "action", ev.Action, "ip", ev.IP)
		return
	}
	if err := h.store.AppendAudit(ctx, &ev); err != nil {
		h.log.ErrorContext(ctx, "audit event not recorded", "action", ev.Action, "actor", ev.Actor, "subject", ev.Subject, "client_id", ev.ClientID, "ip", ev.IP, "detail", ev.Detail, "err", err)
	}
}

// anonymousAuditRule bounds how fast strangers can write to the trail.
// Their failed sign-ins are rate limited per IP and per address, but many
// addresses together could still grow the table without end; past this
// budget (per instance with memory limits, shared with Redis) their events
// are counted in gatehouse_audit_anonymous_dropped_total instead of stored.
// Events of known users and of the system are never dropped.
var anonymousAuditRule = ratelimit.Rule{Name: "audit-anonymous", Limit: 120, Period: time.Minute}

// anonymousAuditAllowed spends one unit of the budget. A limiter that cannot
// answer allows: the sign-in limits in front already failed closed.
func (h *Handler) anonymousAuditAllowed(ctx context.Context) bool {
	if h.limiter == nil {
		return true
	}
	ok, _, err := h.limiter.Allow(ctx, anonymousAuditRule, "all")
	return err != nil || ok
}

// clientAddr is the client's full address, as the audit trail and the
// session list keep it ("" when the peer is not an IP address: a Unix
// socket, a test pipe). Rate limits key on clientIP instead.
func (h *Handler) clientAddr(r *http.Request) string {
	if a := ratelimit.ClientIP(r, h.cfg.TrustedProxies); a.IsValid() {
		return a.String()
	}
	return ""
}

// emailSubject is the audit subject of an attempt on a submitted address:
// the user's ID when it has an account, otherwise a keyed hash of it, so the
// trail never holds what strangers typed (sometimes a password) in clear.
// Callers look it up on every path, known address or not, so the answer
// takes the same time either way.
func (h *Handler) emailSubject(ctx context.Context, email string) string {
	u, err := h.store.GetUserByEmail(ctx, email)
	if err == nil {
		return u.ID
	}
	if !errors.Is(err, storage.ErrNotFound) {
		h.log.WarnContext(ctx, "audit: look up email", "err", err)
	}
	return AuditEmailSubject(h.emails, email)
}

// AuditEmailSubject is the audit subject of an address without an account:
// "email:" and its pseudonym (package emailhash, the one log lines carry as
// email_hash), so `gatehouse audit list --user` finds the events, and the
// log lines of the same address, without storing it.
func AuditEmailSubject(h emailhash.Hasher, email string) string {
	return "email:" + h.Sum(NormalizeEmail(email))
}

// clientID is the client the flow signs in to, or "".
func (fc *flowContext) clientID() string {
	if fc == nil || fc.ar == nil {
		return ""
	}
	return fc.ar.ClientID
}

// reason is the Detail of an event that only says why.
func reason(why string) map[string]string { return map[string]string{"reason": why} }

// lockedUntil is the Detail of a lockout event.
func lockedUntil(t time.Time) map[string]string {
	return map[string]string{"until": t.UTC().Format(time.RFC3339)}
}
