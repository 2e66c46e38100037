package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/storage"
)

// sessionJSON is a session as `users sessions --json` prints it: never the
// cookie's hash.
type sessionJSON struct {
	ID            string             `json:"id"`
	CreatedAt     time.Time          `json:"created_at"`
	LastSeenAt    time.Time          `json:"last_seen_at"`
	IdleExpiresAt time.Time          `json:"idle_expires_at"`
	ExpiresAt     time.Time          `json:"expires_at"`
	Expired       bool               `json:"expired"`
	AuthTime      time.Time          `json:"auth_time"`
	AMR           []string           `json:"amr"`
	Upstream      string             `json:"upstream,omitempty"`
	Device        string             `json:"device"`
	IP            string             `json:"ip"`
	UserAgent     string             `json:"user_agent"`
	Apps          []login.SessionApp `json:"apps"`
}

// usersSessionsCmd lists where a user is signed in, with the apps that
// received tokens in each session.
func usersSessionsCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "sessions EMAIL",
		Short: "List a user's sign-in sessions and the apps used in each",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				list, err := c.store.ListSessionsByUser(ctx, u.ID)
				if err != nil {
					return fmt.Errorf("list sessions: %w", err)
				}
				now := e.now()
				out := make([]sessionJSON, 0, len(list))
				for _, s := range list {
					apps, err := login.SessionApps(ctx, c.store, s.ID)
					if err != nil {
						return err
					}
					out = append(out, sessionJSON{
						ID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
						IdleExpiresAt: s.IdleExpiresAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
						Expired: !s.Live(now), AuthTime: s.AuthTime.UTC(), AMR: s.AMR, Upstream: s.IDP,
						Device: login.DeviceName(s.UserAgent), IP: s.IP, UserAgent: s.UserAgent, Apps: apps,
					})
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				if len(out) == 0 {
					fmt.Fprintf(e.stdout, "%s has no sessions\n", u.Email)
				}
				for _, s := range out {
					ids := make([]string, 0, len(s.Apps))
					for _, a := range s.Apps {
						ids = append(ids, a.ClientID)
					}
					state := "active"
					if s.Expired {
						state = "expired"
					}
					fmt.Fprintf(e.stdout, "%s\t%s\tdevice=%s\tip=%s\tcreated=%s\tlast_seen=%s\tamr=%s\tapps=%s\n", s.ID, state,
						s.Device, s.IP, s.CreatedAt.Format(time.RFC3339), s.LastSeenAt.Format(time.RFC3339), strings.Join(s.AMR, ","), strings.Join(ids, ","))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// usersSignOutCmd ends a user's sessions for an admin. Without --session it
// is the incident-response tool: every session and every refresh token,
// offline ones too, as after a password reset. With --session it ends that
// one session as the user's own sign-out would.
func usersSignOutCmd(e *env) *cobra.Command {
	var sessionID string
	cmd := &cobra.Command{
		Use:   "sign-out EMAIL",
		Short: "End a user's sessions (all, or one with --session) and tell their apps (back-channel logout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, cfg *config, c *core) error {
				u, err := userByEmail(ctx, c.store, args[0])
				if err != nil {
					return err
				}
				now := e.now()
				ender := sessionEnder(cfg, c, now)
				if sessionID == "" {
					n, err := ender.EndUserSessions(ctx, u.ID, "admin_sign_out")
					if err != nil {
						return err
					}
					c.audit(ctx, now, storage.AuditEvent{Action: storage.AuditSessionEnded, Subject: u.ID, Detail: map[string]string{"via": "admin", "sessions": fmt.Sprint(n)}})
					fmt.Fprintf(e.stdout, "signed %s out of %d sessions; their refresh tokens were revoked, offline ones too\n", u.Email, n)
					return nil
				}
				s, err := c.store.GetSession(ctx, sessionID)
				// Another user's session is "not found" here: an admin
				// names the user, and the ID must be one of theirs.
				if errors.Is(err, storage.ErrNotFound) || (err == nil && s.UserID != u.ID) {
					return fmt.Errorf("%s has no session %s", u.Email, sessionID)
				}
				if err != nil {
					return fmt.Errorf("load session: %w", err)
				}
				if _, err := ender.EndSession(ctx, s, "admin_sign_out"); err != nil {
					return err
				}
				c.audit(ctx, now, storage.AuditEvent{Action: storage.AuditSessionEnded, Subject: u.ID, Detail: map[string]string{"via": "admin", "session_id": s.ID}})
				fmt.Fprintf(e.stdout, "ended session %s of %s\n", s.ID, u.Email)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&sessionID, "session", "", "end only this session (an ID from `users sessions`)")
	return cmd
}
