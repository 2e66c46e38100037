package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/adminapi"
)

func keysCmd(e *env) *cobra.Command {
	return group("keys", "Manage signing keys",
		withSettings(keysListCmd(e), scopeStore),
		withSettings(keysRotateCmd(e), scopeStore|scopeKeys))
}

// keyJSON is a signing key as `keys list --json` prints it: no key material.
type keyJSON struct {
	ID          string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RemoveAfter *time.Time `json:"remove_after,omitempty"`
}

func keysListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys: active, next (published, not yet signing) and retired ones still published",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				list, err := svc.ListKeys(ctx, admin.CLI)
				if err != nil {
					return err
				}
				out := make([]keyJSON, 0, len(list))
				for _, k := range list {
					out = append(out, keyJSON{ID: k.ID, Algorithm: k.Algorithm, State: k.State, CreatedAt: k.CreatedAt.UTC(),
						ActivatedAt: utcPtr(k.ActivatedAt), RetiredAt: utcPtr(k.RetiredAt), RemoveAfter: utcPtr(k.RemoveAfter)})
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				for _, k := range out {
					removed := "-"
					if k.RemoveAfter != nil {
						removed = k.RemoveAfter.Format(time.RFC3339)
					}
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\tcreated=%s\tremove_after=%s\n", k.ID, k.Algorithm, k.State, k.CreatedAt.Format(time.RFC3339), removed)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func keysRotateCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Promote the next signing key of every algorithm now and publish new next keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				rotated, err := svc.RotateKeys(ctx, admin.CLI)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, adminapi.RotationJSON(rotated))
				}
				for _, k := range rotated {
					fmt.Fprintf(e.stdout, "active %s signing key: %s (was %s)\n", k.Algorithm, k.Active, k.Previous)
				}
				fmt.Fprintln(e.stdout, "running servers switch within 30 s")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func migrateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Long: "Create or upgrade the database schema. It takes the same flags as serve, so that a\n" +
			"deployment can run it with serve's arguments before starting the server.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup(cmd, e)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), cfg, log) // opening migrates
			if err != nil {
				return err
			}
			defer st.Close()
			if v, ok := st.(interface {
				MigrationVersion(context.Context) (int64, error)
			}); ok {
				n, err := v.MigrationVersion(cmd.Context())
				if err != nil {
					return fmt.Errorf("read schema version: %w", err)
				}
				fmt.Fprintf(e.stdout, "schema is at version %d (%s)\n", n, storeKind(cfg))
				return nil
			}
			fmt.Fprintln(e.stdout, "schema is up to date")
			return nil
		},
	}
}
