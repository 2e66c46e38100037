package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// auditPeriods are the choices of the "since" filter.
var auditPeriods = []struct{ Value, Label string }{
	{"", "Any time"}, {"1h", "Last hour"}, {"24h", "Last 24 hours"}, {"168h", "Last 7 days"}, {"720h", "Last 30 days"},
}

type auditPage struct {
	base
	User, Actor, Action, Since string
	Actions                    []string
	Periods                    []struct{ Value, Label string }
	Events                     []auditRow
	Next                       string
}

// getAudit is the audit trail with filters: about a user, by an actor, of
// an action, in a recent period; newest first, a page at a time.
func (c *Console) getAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := &auditPage{base: base{Nav: "audit"}, User: strings.TrimSpace(q.Get("user")), Actor: strings.TrimSpace(q.Get("actor")),
		Action: q.Get("action"), Since: q.Get("since"), Actions: admin.AuditActions(), Periods: auditPeriods}
	query := admin.AuditQuery{User: p.User, Actor: p.Actor, Cursor: q.Get("cursor")}
	if p.Action != "" {
		query.Actions = []string{p.Action}
	}
	if d, err := time.ParseDuration(p.Since); err == nil && d > 0 {
		query.Since = c.now().Add(-d)
	} else {
		p.Since = ""
	}
	page, err := c.svc.Audit(r.Context(), current(r).actor, query)
	if err != nil {
		c.fail(w, r, err, func(status int, msg string) {
			p.Error = msg
			c.render(w, r, status, "Audit trail", "audit", &p.base, p)
		})
		return
	}
	if p.Events, err = c.auditRows(r, page.Items); err != nil {
		c.pages.InternalError(w, r, "console: audit names", err)
		return
	}
	if page.NextCursor != "" {
		next := url.Values{"cursor": {page.NextCursor}}
		for k, v := range map[string]string{"user": p.User, "actor": p.Actor, "action": p.Action, "since": p.Since} {
			if v != "" {
				next.Set(k, v)
			}
		}
		p.Next = Prefix + "/audit?" + next.Encode()
	}
	c.render(w, r, http.StatusOK, "Audit trail", "audit", &p.base, p)
}
