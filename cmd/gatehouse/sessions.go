package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/login"
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
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				list, err := svc.Sessions(ctx, admin.CLI, u.ID)
				if err != nil {
					return err
				}
				out := make([]sessionJSON, 0, len(list))
				for _, s := range list {
					out = append(out, sessionJSON{
						ID: s.ID, CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(),
						IdleExpiresAt: s.IdleExpiresAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
						Expired: s.Expired, AuthTime: s.AuthTime.UTC(), AMR: s.AMR, Upstream: s.Upstream,
						Device: s.Device, IP: s.IP, UserAgent: s.UserAgent, Apps: s.Apps,
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
			return withUser(cmd, e, args[0], func(ctx context.Context, svc *admin.Service, u *admin.User) error {
				n, err := svc.SignOut(ctx, admin.CLI, u.ID, sessionID)
				if err != nil {
					return err
				}
				if sessionID == "" {
					fmt.Fprintf(e.stdout, "signed %s out of %d sessions; their refresh tokens were revoked, offline ones too\n", u.Email, n)
				} else {
					fmt.Fprintf(e.stdout, "ended session %s of %s\n", sessionID, u.Email)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&sessionID, "session", "", "end only this session (an ID from `users sessions`)")
	return cmd
}
