package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/storage"
)

func keysCmd(e *env) *cobra.Command {
	var asJSON bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Promote the next signing key now and publish a new next key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				before := c.keys.Active().ID
				if err := c.keys.Rotate(ctx); err != nil {
					return fmt.Errorf("rotate keys: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditKeysRotated, Subject: c.keys.Active().ID, Detail: map[string]string{"retired": before}})
				if asJSON {
					return printJSON(e.stdout, struct {
						Active   string `json:"active_kid"`
						Previous string `json:"previous_kid"`
					}{c.keys.Active().ID, before})
				}
				fmt.Fprintf(e.stdout, "active signing key: %s (was %s); running servers switch within 30 s\n", c.keys.Active().ID, before)
				return nil
			})
		},
	}
	rotate.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return group("keys", "Manage signing keys", withSettings(rotate, scopeStore|scopeKeys))
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
