package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// The registration-token commands manage the initial access tokens of
// dynamic client registration (GATEHOUSE_CLIENT_REGISTRATION), through the
// admin service like every client command.

// registrationTokenJSON is a token as `clients registration-token … --json`
// prints it; Token only at creation.
type registrationTokenJSON struct {
	ID        string     `json:"id"`
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	Usable    bool       `json:"usable"`
}

func toRegistrationTokenJSON(t *admin.RegistrationToken, token string, now time.Time) registrationTokenJSON {
	return registrationTokenJSON{ID: t.ID, Token: token, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		MaxUses: t.MaxUses, Uses: t.Uses, Usable: t.Usable(now)}
}

func registrationTokenCmd(e *env) *cobra.Command {
	return group("registration-token", "Manage initial access tokens for dynamic client registration (/oauth/register)",
		withSettings(registrationTokenCreateCmd(e), scopeStore),
		withSettings(registrationTokenListCmd(e), scopeStore),
		withSettings(registrationTokenRevokeCmd(e), scopeStore))
}

func registrationTokenCreateCmd(e *env) *cobra.Command {
	var spec admin.RegistrationTokenSpec
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an initial access token; prints it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				t, token, err := svc.CreateRegistrationToken(ctx, admin.CLI, spec)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, toRegistrationTokenJSON(t, token, e.now()))
				}
				fmt.Fprintf(e.stdout, "id:    %s\ntoken: %s\n(shown only now; send it as Authorization: Bearer to /oauth/register)\n", t.ID, token)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&spec.ExpiresIn, "expires", 0, "lifetime, e.g. 24h (default: never expires)")
	f.IntVar(&spec.Uses, "uses", 0, "how many clients it may register (default: unlimited)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func registrationTokenListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List initial access tokens (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				list, err := svc.ListRegistrationTokens(ctx, admin.CLI)
				if err != nil {
					return err
				}
				now := e.now()
				out := make([]registrationTokenJSON, 0, len(list))
				for i := range list {
					out = append(out, toRegistrationTokenJSON(&list[i], "", now))
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				for _, t := range out {
					expires, uses, state := "never", strconv.Itoa(t.Uses)+"/unlimited", "usable"
					if t.ExpiresAt != nil {
						expires = t.ExpiresAt.Format(time.RFC3339)
					}
					if t.MaxUses > 0 {
						uses = fmt.Sprintf("%d/%d", t.Uses, t.MaxUses)
					}
					if !t.Usable {
						state = "expired or used up"
					}
					fmt.Fprintf(e.stdout, "%s\tcreated=%s\texpires=%s\tuses=%s\t%s\n",
						t.ID, t.CreatedAt.Format(time.RFC3339), expires, uses, state)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func registrationTokenRevokeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an initial access token (clients registered with it stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				if err := svc.RevokeRegistrationToken(ctx, admin.CLI, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "revoked registration token %s\n", args[0])
				return nil
			})
		},
	}
}
