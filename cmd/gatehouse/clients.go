package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// clientJSON is a client as `clients … --json` prints it.
type clientJSON struct {
	ClientID               string   `json:"client_id"`
	ClientSecret           string   `json:"client_secret,omitempty"`
	Name                   string   `json:"name,omitempty"`
	Type                   string   `json:"type,omitempty"`
	AuthMethod             string   `json:"auth_method,omitempty"`
	GrantTypes             []string `json:"grant_types,omitempty"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	AccessToken            string   `json:"access_token,omitempty"`
	RequireConsent         bool     `json:"require_consent,omitempty"`
	RequireMFA             bool     `json:"require_mfa,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	Resources              []string `json:"resources,omitempty"`
}

func toClientJSON(c *storage.Client) clientJSON {
	return clientJSON{
		ClientID: c.ID, Name: c.Name, Type: c.AppType, AuthMethod: c.AuthMethod, GrantTypes: c.GrantTypes,
		RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		AccessToken: c.AccessTokenFormat, RequireConsent: c.RequireConsent, RequireMFA: c.RequireMFA, BackchannelLogoutURI: c.BackchannelLogoutURI,
		Resources: c.Resources,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func clientsCmd(e *env) *cobra.Command {
	return group("clients", "Manage OAuth clients (relying parties)",
		withSettings(clientsCreateCmd(e), scopeStore),
		withSettings(clientsListCmd(e), scopeStore),
		withSettings(clientsUpdateCmd(e), scopeStore),
		withSettings(clientsRotateCmd(e), scopeStore),
		withSettings(clientsDeleteCmd(e), scopeStore))
}

func clientsCreateCmd(e *env) *cobra.Command {
	var spec clientSpec
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				cl, err := spec.toClient(e.now())
				if err != nil {
					return err
				}
				var secret string
				if cl.AuthMethod != storage.AuthMethodNone {
					secret = newClientSecret()
					cl.SecretHash = hashSecret(secret)
				}
				if err := c.store.CreateClient(ctx, cl); err != nil {
					if errors.Is(err, storage.ErrConflict) {
						return fmt.Errorf("a client with id %q already exists", cl.ID)
					}
					return fmt.Errorf("create client: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditClientCreated, Subject: cl.ID, ClientID: cl.ID})
				if asJSON {
					return printJSON(e.stdout, struct {
						ClientID     string   `json:"client_id"`
						ClientSecret string   `json:"client_secret,omitempty"`
						RedirectURIs []string `json:"redirect_uris"`
					}{cl.ID, secret, nonNil(cl.RedirectURIs)})
				}
				fmt.Fprintf(e.stdout, "client_id:     %s\n", cl.ID)
				if secret != "" {
					fmt.Fprintf(e.stdout, "client_secret: %s\n(shown only now; store it safely)\n", secret)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.ID, "id", "", "client id (generated when empty)")
	f.StringVar(&spec.Name, "name", "", "display name (shown on the consent page)")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	f.StringSliceVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable)")
	f.StringVar(&spec.Type, "type", "web", "application type: web, native or spa")
	f.BoolVar(&spec.Public, "public", false, "public client: no secret, PKCE required")
	f.StringVar(&spec.AuthMethod, "auth-method", "", "client_secret_basic (default) or client_secret_post")
	f.StringSliceVar(&spec.GrantTypes, "grant-types", nil, "authorization_code, refresh_token, client_credentials (default: the first two)")
	f.StringVar(&spec.AccessToken, "access-token", "opaque", "access token format: opaque or jwt")
	f.BoolVar(&spec.RequireConsent, "require-consent", false, "ask users for consent (third-party client)")
	f.BoolVar(&spec.RequireMFA, "require-mfa", false, "every sign-in into this client needs two factors; users without one enrol first")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where Gatehouse POSTs logout tokens when a session the client took part in ends (https, or http on loopback)")
	f.BoolVar(&spec.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false, "the client needs sid in logout tokens")
	f.BoolVar(&spec.OfflineSurvivesLogout, "offline-survives-logout", false, "refresh tokens granted with offline_access survive the end of the SSO session")
	f.StringSliceVar(&spec.Resources, "resource", nil, "RFC 8707 resource (API) URI its access tokens may be for; the first is the default audience (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func clientsListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				list, err := c.store.ListClients(ctx)
				if err != nil {
					return fmt.Errorf("list clients: %w", err)
				}
				out := make([]clientJSON, 0, len(list))
				for i := range list {
					out = append(out, toClientJSON(&list[i]))
				}
				if asJSON {
					return printJSON(e.stdout, out)
				}
				for _, cl := range out {
					fmt.Fprintf(e.stdout, "%s\t%s\t%s\trequire_mfa=%t\t%s\n",
						cl.ClientID, cl.Name, cl.AuthMethod, cl.RequireMFA, strings.Join(cl.RedirectURIs, " "))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func clientsRotateCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate-secret CLIENT_ID",
		Short: "Replace a client's secret; prints the new one once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				cl, err := c.store.GetClient(ctx, args[0])
				if err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no client with id %q", args[0])
					}
					return fmt.Errorf("load client: %w", err)
				}
				if cl.AuthMethod == storage.AuthMethodNone {
					return fmt.Errorf("client %q is public and has no secret", cl.ID)
				}
				secret := newClientSecret()
				cl.SecretHash = hashSecret(secret)
				cl.UpdatedAt = e.now()
				if err := c.store.UpdateClient(ctx, cl); err != nil {
					return fmt.Errorf("update client: %w", err)
				}
				c.audit(ctx, cl.UpdatedAt, storage.AuditEvent{Action: storage.AuditClientSecretRotated, Subject: cl.ID, ClientID: cl.ID})
				if asJSON {
					return printJSON(e.stdout, struct {
						ClientID     string   `json:"client_id"`
						ClientSecret string   `json:"client_secret"`
						RedirectURIs []string `json:"redirect_uris"`
					}{cl.ID, secret, nonNil(cl.RedirectURIs)})
				}
				fmt.Fprintf(e.stdout, "client_id:     %s\nclient_secret: %s\n(shown only now; the old secret no longer works)\n", cl.ID, secret)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func clientsDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				if err := c.store.DeleteClient(ctx, args[0]); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no client with id %q", args[0])
					}
					return fmt.Errorf("delete client: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditClientDeleted, Subject: args[0], ClientID: args[0]})
				fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
}

// clientsUpdateCmd changes the settings given on the command line and
// leaves the others as they are; the result is checked like a new client.
func clientsUpdateCmd(e *env) *cobra.Command {
	var bcURI string
	var bcSession, offline, requireMFA, requireConsent bool
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Change a client's back-channel logout, offline-token and sign-in settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			return withCore(cmd, e, func(ctx context.Context, _ *config, c *core) error {
				cl, err := c.store.GetClient(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with id %q", args[0])
				} else if err != nil {
					return fmt.Errorf("load client: %w", err)
				}
				changed := map[string]string{}
				if f.Changed("backchannel-logout-uri") {
					if bcURI != "" {
						if err := backchannel.ValidateURI(bcURI); err != nil {
							return fmt.Errorf("back-channel logout URI %q: %w", bcURI, err)
						}
					}
					cl.BackchannelLogoutURI = bcURI
					changed["backchannel_logout_uri"] = bcURI
				}
				if f.Changed("backchannel-logout-session-required") {
					cl.BackchannelLogoutSessionRequired = bcSession
					changed["backchannel_logout_session_required"] = strconv.FormatBool(bcSession)
				}
				if f.Changed("offline-survives-logout") {
					cl.OfflineSurvivesLogout = offline
					changed["offline_survives_logout"] = strconv.FormatBool(offline)
				}
				if f.Changed("require-mfa") {
					cl.RequireMFA = requireMFA
					changed["require_mfa"] = strconv.FormatBool(requireMFA)
				}
				if f.Changed("require-consent") {
					cl.RequireConsent = requireConsent
					changed["require_consent"] = strconv.FormatBool(requireConsent)
				}
				if len(changed) == 0 {
					return errors.New("nothing to change: give at least one setting (see --help)")
				}
				if cl.BackchannelLogoutSessionRequired && cl.BackchannelLogoutURI == "" {
					return errors.New("--backchannel-logout-session-required needs a back-channel logout URI")
				}
				cl.UpdatedAt = e.now().UTC()
				if err := c.store.UpdateClient(ctx, cl); err != nil {
					return fmt.Errorf("update client: %w", err)
				}
				c.audit(ctx, e.now(), storage.AuditEvent{Action: storage.AuditClientUpdated, Subject: cl.ID, ClientID: cl.ID, Detail: changed})
				fmt.Fprintf(e.stdout, "updated client %s\n", cl.ID)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&bcURI, "backchannel-logout-uri", "", "where logout tokens are POSTed (https, or http on loopback); empty removes it")
	f.BoolVar(&bcSession, "backchannel-logout-session-required", false, "the client needs sid in logout tokens")
	f.BoolVar(&offline, "offline-survives-logout", false, "refresh tokens granted with offline_access survive the end of the SSO session")
	f.BoolVar(&requireMFA, "require-mfa", false, "every sign-in into this client needs two factors")
	f.BoolVar(&requireConsent, "require-consent", false, "ask users for consent")
	return cmd
}
