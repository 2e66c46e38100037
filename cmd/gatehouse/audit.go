package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/keys"
)

// emailPseudonymKey keys the pseudonym of an address (package emailhash) in
// log lines and, for an address without an account, in the audit trail;
// `audit list --user` derives the same.
func emailPseudonymKey(secret []byte) [32]byte { return keys.DeriveKey(secret, "log-email-pseudonym") }

// auditIP is the client address the OIDC endpoints record: the same
// trusted-proxy rule as the login UI's.
func auditIP(r *http.Request, trusted []netip.Prefix) string {
	if a := ratelimit.ClientIP(r, trusted); a.IsValid() {
		return a.String()
	}
	return ""
}

// expireAudit deletes audit events older than GATEHOUSE_AUDIT_RETENTION
// (none when it is 0); part of the cleanup pass.
func (a *app) expireAudit(ctx context.Context) error {
	if a.cfg.AuditRetention <= 0 {
		return nil
	}
	n, err := a.store.DeleteAuditBefore(ctx, a.now().Add(-a.cfg.AuditRetention))
	if err != nil {
		return fmt.Errorf("expire audit events: %w", err)
	}
	if n > 0 {
		a.log.Debug("removed old audit events", "rows", n)
	}
	return nil
}

// auditJSON is an event as `audit list --json` prints it.
type auditJSON struct {
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Action    string            `json:"action"`
	Actor     string            `json:"actor"`
	Subject   string            `json:"subject"`
	IP        string            `json:"ip,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	ClientID  string            `json:"client_id,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

func auditCmd(e *env) *cobra.Command {
	return group("audit", "Read the audit trail", withSettings(auditListCmd(e), scopeStore))
}

func auditListCmd(e *env) *cobra.Command {
	var user, actor, action, before string
	var since time.Duration
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return fmt.Errorf("--limit %d: use a number from 1 to 10000", limit)
			}
			if since < 0 {
				return fmt.Errorf("--since %s: use a positive duration such as 24h", since)
			}
			if cmd.Flags().Changed("user") && strings.TrimSpace(user) == "" {
				// A script's empty $EMAIL must not list everyone's events.
				return errors.New("--user: give an email address (empty lists nothing; leave the flag out to list every event)")
			}
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				q := admin.AuditQuery{User: user, Actor: actor, Cursor: before}
				if action != "" {
					q.Actions = []string{action}
				}
				if since > 0 {
					q.Since = e.now().Add(-since)
				}
				// The service pages by at most admin.MaxPageSize; --limit may ask for more.
				out := []auditJSON{}
				for len(out) < limit {
					q.Limit = min(limit-len(out), admin.MaxPageSize)
					page, err := svc.Audit(ctx, admin.CLI, q)
					var ae *admin.Error
					if errors.As(err, &ae) && ae.Field == "cursor" {
						return fmt.Errorf("--before %q: no such event (it may have expired)", before)
					}
					if errors.As(err, &ae) && ae.Field == "action" {
						return fmt.Errorf("--action %q: not an audit action (one of %s)", action, strings.Join(admin.AuditActions(), ", "))
					}
					if err != nil {
						return fmt.Errorf("list audit events: %w", err)
					}
					for _, ev := range page.Items {
						out = append(out, auditJSON(ev))
					}
					if page.NextCursor == "" {
						break
					}
					q.Cursor = page.NextCursor
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				return printAuditTable(e, out)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "only events about this email address (an account, or attempts on an address without one) or user ID")
	f.StringVar(&actor, "actor", "", "only events by this actor: an email address, a user ID, cli, system, anonymous or client:ID")
	f.StringVar(&action, "action", "", "only events of this action, e.g. user_role_changed")
	f.DurationVar(&since, "since", 0, "only events of this last period, e.g. 24h (default: all)")
	f.IntVar(&limit, "limit", 100, "at most this many events")
	f.StringVar(&before, "before", "", "continue after the event with this ID (the last one of the previous page)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printAuditTable(e *env, list []auditJSON) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tACTOR\tSUBJECT\tIP\tCLIENT\tDETAIL")
	for _, ev := range list {
		var detail []string
		for _, k := range slices.Sorted(maps.Keys(ev.Detail)) {
			detail = append(detail, k+"="+ev.Detail[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.Format(time.RFC3339), ev.Action, ev.Actor,
			ev.Subject, dash(ev.IP), dash(ev.ClientID), strings.Join(detail, " "))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
