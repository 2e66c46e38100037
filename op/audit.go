package op

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/storage"
)

// auditTimeout bounds one audit write.
const auditTimeout = 5 * time.Second

// requestInfo is what the audit trail keeps of the request an event
// happened in; withRequestInfo puts it in the context, because zitadel calls
// our storage callbacks with the context only.
type requestInfo struct{ ip, userAgent string }

type requestInfoKey struct{}

func (p *Provider) withRequestInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestInfo{ip: p.clientIP(r), userAgent: storage.ClipUserAgent(r.UserAgent())}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	})
}

// clientIP is Config.ClientIP (trusted proxies, as the login UI sees them),
// or the TCP peer.
func (p *Provider) clientIP(r *http.Request) string {
	if p.cfg.ClientIP != nil {
		return p.cfg.ClientIP(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return ""
}

// audit records ev with the time and the request's client. Like the login
// UI's, it never fails what the request did: a lost event is an error log
// line (docs/design.md).
func (p *Provider) audit(ctx context.Context, ev storage.AuditEvent) {
	ev.Time = p.now()
	if info, ok := ctx.Value(requestInfoKey{}).(requestInfo); ok {
		ev.IP, ev.UserAgent = info.ip, info.userAgent
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := p.store.AppendAudit(ctx, &ev); err != nil {
		p.log.ErrorContext(ctx, "audit event not recorded", "action", ev.Action, "actor", ev.Actor, "subject", ev.Subject, "client_id", ev.ClientID, "ip", ev.IP, "detail", ev.Detail, "err", err)
	}
}
