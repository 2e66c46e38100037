package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/login"
	"github.com/gatehouse-id/gatehouse/storage"
)

func logoutDeliveriesCmd(e *env) *cobra.Command {
	return group("logout-deliveries", "Back-channel logout tokens sent to apps, and those still pending",
		withSettings(logoutDeliveriesListCmd(e), scopeStore))
}

// deliveryJSON is a delivery as `logout-deliveries list --json` prints it:
// never the token.
type deliveryJSON struct {
	ID            string     `json:"id"`
	ClientID      string     `json:"client_id"`
	URI           string     `json:"uri"`
	UserID        string     `json:"user_id"`
	SessionID     string     `json:"session_id"`
	Reason        string     `json:"reason"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	GaveUpAt      *time.Time `json:"gave_up_at,omitempty"`
}

func logoutDeliveriesListCmd(e *env) *cobra.Command {
	var f storage.LogoutDeliveryFilter
	var email string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List logout deliveries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch f.State {
			case "", storage.DeliveryPending, storage.DeliveryDelivered, storage.DeliveryGaveUp:
			default:
				return fmt.Errorf("--state %q: use pending, delivered or gave_up", f.State)
			}
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				if email != "" {
					u, err := c.store.GetUserByEmail(ctx, login.NormalizeEmail(email))
					if err != nil {
						return fmt.Errorf("no user with email %s", login.NormalizeEmail(email))
					}
					f.UserID = u.ID
				}
				list, err := c.store.ListLogoutDeliveries(ctx, f)
				if err != nil {
					return fmt.Errorf("list logout deliveries: %w", err)
				}
				out := make([]deliveryJSON, 0, len(list))
				for _, d := range list {
					j := deliveryJSON{ID: d.ID, ClientID: d.ClientID, URI: d.URI, UserID: d.UserID, SessionID: d.SessionID, Reason: d.Reason,
						Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(),
						DeliveredAt: d.DeliveredAt, GaveUpAt: d.GaveUpAt, State: storage.DeliveryPending}
					switch {
					case d.DeliveredAt != nil:
						j.State = storage.DeliveryDelivered
					case d.GaveUpAt != nil:
						j.State = storage.DeliveryGaveUp
					default:
						t := d.NextAttemptAt.UTC()
						j.NextAttemptAt = &t
					}
					out = append(out, j)
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				for _, d := range out {
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\tattempts=%d\tstatus=%d\t%s\t%s\n",
						d.CreatedAt.Format(time.RFC3339), d.ClientID, d.State, d.Reason, d.Attempts, d.LastStatus, d.URI, d.LastError)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ClientID, "client", "", "only this client's")
	fl.StringVar(&email, "user", "", "only this user's (email)")
	fl.StringVar(&f.State, "state", "", "pending, delivered or gave_up")
	fl.IntVar(&f.Limit, "limit", 0, "at most this many (default 100)")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
