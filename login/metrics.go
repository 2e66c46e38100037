package login

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
)

// Metrics are the sign-in UI's Prometheus collectors. cmd creates them with
// NewMetrics, registers them (Metrics is a prometheus.Collector) and passes
// them in Config. A nil *Metrics counts nothing.
type Metrics struct {
	signIns       *prometheus.CounterVec
	lockouts      prometheus.Counter
	registrations prometheus.Counter
	auditDropped  prometheus.Counter
	upstreams     *prometheus.CounterVec
}

// Sign-in outcomes, the label values of signins_total.
const (
	outcomeSuccess     = "success"
	outcomeInvalid     = "invalid"      // unknown email or wrong password
	outcomeLocked      = "locked"       // refused: the address is locked
	outcomeUnverified  = "unverified"   // right password, email not verified (when required)
	outcomeDisabled    = "disabled"     // right password (or passkey, upstream), account disabled by an admin
	outcomeRateLimited = "rate_limited" // refused by a rate limit (or the limiter was down)
	outcomeBusy        = "busy"         // refused: the password hasher was overloaded (503); nothing counted

	// Upstream sign-ins also end in these (besides success, unverified,
	// rate_limited and upstream_<kind> for a failed leg).
	outcomeRefused     = "refused"      // callback refused before the upstream was asked (state, replay, mix-up)
	outcomeNoAccount   = "no_account"   // unknown identity, sign-up through upstreams off
	outcomeLinkPending = "link_pending" // verified email of an existing account: password asked before linking
)

// NewMetrics returns the collectors, every outcome at zero.
func NewMetrics() *Metrics {
	m := &Metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_signins_total",
			Help: "Password sign-in attempts by outcome: success, invalid, locked, unverified, disabled, rate_limited, busy.",
		}, []string{"outcome"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_lockouts_total",
			Help: "Failed sign-ins that reached the lockout threshold and locked an address.",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_registrations_total",
			Help: "Accounts created through the registration page.",
		}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_anonymous_dropped_total",
			Help: "Audit events of anonymous actors (failed sign-ins of strangers) not stored because their budget per minute was spent.",
		}),
		upstreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_signins_total",
			Help: "Sign-ins through upstream identity providers by upstream and outcome: success, unverified, disabled, no_account, link_pending, refused, rate_limited, upstream_denied, upstream_unavailable, upstream_invalid, upstream_not_allowed.",
		}, []string{"upstream", "outcome"}),
	}
	for _, o := range []string{outcomeSuccess, outcomeInvalid, outcomeLocked, outcomeUnverified, outcomeDisabled, outcomeRateLimited, outcomeBusy} {
		m.signIns.WithLabelValues(o)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.signIns.Describe(ch)
	m.lockouts.Describe(ch)
	m.registrations.Describe(ch)
	m.auditDropped.Describe(ch)
	m.upstreams.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.signIns.Collect(ch)
	m.lockouts.Collect(ch)
	m.registrations.Collect(ch)
	m.auditDropped.Collect(ch)
	m.upstreams.Collect(ch)
}

func (m *Metrics) upstreamSignIn(upstream, outcome string) {
	if m != nil {
		m.upstreams.WithLabelValues(upstream, outcome).Inc()
	}
}

func (m *Metrics) signIn(outcome string) {
	if m != nil {
		m.signIns.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) lockout() {
	if m != nil {
		m.lockouts.Inc()
	}
}

func (m *Metrics) auditDrop() {
	if m != nil {
		m.auditDropped.Inc()
	}
}

func (m *Metrics) registered() {
	if m != nil {
		m.registrations.Inc()
	}
}

// logSignInRefused logs a failed or refused sign-in with what an operator
// needs to spot an attack: the client IP (as the trusted-proxy rules give
// it) and a keyed pseudonym of the submitted address, never the address
// itself (package emailhash).
func (h *Handler) logSignInRefused(ctx context.Context, r *http.Request, msg, email string, attrs ...any) {
	h.log.InfoContext(ctx, msg, append([]any{
		"client_ip", ratelimit.ClientIP(r, h.cfg.TrustedProxies).String(),
		"email_hash", h.emails.Sum(email),
	}, attrs...)...)
}
