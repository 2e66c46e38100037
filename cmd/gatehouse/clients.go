package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// The clients commands are a front end of the admin service (package
// admin), which validates, stores and audits.

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
	AllowedScopes          []string `json:"allowed_scopes,omitempty"`
	RequirePAR             bool     `json:"require_par,omitempty"` // pushed authorization requests (RFC 9126)
	RequireDPoP            bool     `json:"require_dpop,omitempty"`
	// private_key_jwt keys.
	JWKSURI string          `json:"jwks_uri,omitempty"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	// IDTokenSigningAlg: absent when the client uses the default.
	IDTokenSigningAlg string `json:"id_token_signed_response_alg,omitempty"`
}

func toClientJSON(c *admin.Client) clientJSON {
	return clientJSON{
		ClientID: c.ID, Name: c.Name, Type: c.Type, AuthMethod: c.AuthMethod, GrantTypes: c.GrantTypes,
		RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		AccessToken: c.AccessTokenFormat, RequireConsent: c.RequireConsent, RequireMFA: c.RequireMFA, BackchannelLogoutURI: c.BackchannelLogoutURI,
		Resources: c.Resources, AllowedScopes: c.AllowedScopes, RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP, JWKSURI: c.JWKSURI, JWKS: c.JWKS,
		IDTokenSigningAlg: c.IDTokenSigningAlg,
	}
}

// readJWKSFile reads the JWKS of --jwks-file (checked by the admin service:
// public keys only).
func readJWKSFile(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	return json.RawMessage(b), nil
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
		withSettings(clientsDeleteCmd(e), scopeStore),
		registrationTokenCmd(e))
}

// printSecret prints a client with the secret it has just been given,
// which is shown only now.
func printSecret(e *env, asJSON bool, c *admin.Client, secret, note string) error {
	if asJSON {
		return printJSON(e.stdout, struct {
			ClientID     string   `json:"client_id"`
			ClientSecret string   `json:"client_secret,omitempty"`
			RedirectURIs []string `json:"redirect_uris"`
		}{c.ID, secret, nonNil(c.RedirectURIs)})
	}
	fmt.Fprintf(e.stdout, "client_id:     %s\n", c.ID)
	if secret != "" {
		fmt.Fprintf(e.stdout, "client_secret: %s\n(%s)\n", secret, note)
	}
	return nil
}

func clientsCreateCmd(e *env) *cobra.Command {
	var spec admin.ClientSpec
	var asJSON bool
	var jwksFile string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jwksFile != "" {
				doc, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				spec.JWKS = doc
			}
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				c, secret, err := svc.CreateClient(ctx, admin.CLI, spec)
				if err != nil {
					return err
				}
				return printSecret(e, asJSON, c, secret, "shown only now; store it safely")
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
	f.StringVar(&spec.AuthMethod, "auth-method", "", "client_secret_basic (default), client_secret_post or private_key_jwt (no secret: give --jwks-uri or --jwks-file)")
	f.StringVar(&spec.JWKSURI, "jwks-uri", "", "private_key_jwt: URL of the client's public keys (JWKS; https, or http on loopback)")
	f.StringVar(&jwksFile, "jwks-file", "", "private_key_jwt: file holding the client's public keys as a JWKS (public keys only)")
	f.StringSliceVar(&spec.GrantTypes, "grant-types", nil, "authorization_code, refresh_token, client_credentials, device_code (default: the first two)")
	f.StringVar(&spec.AccessToken, "access-token", "opaque", "access token format: opaque or jwt")
	f.BoolVar(&spec.RequireConsent, "require-consent", false, "ask users for consent (third-party client)")
	f.BoolVar(&spec.RequireMFA, "require-mfa", false, "every sign-in into this client needs two factors; users without one enrol first")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "where Gatehouse POSTs logout tokens when a session the client took part in ends (https, or http on loopback)")
	f.BoolVar(&spec.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false, "the client needs sid in logout tokens")
	f.BoolVar(&spec.OfflineSurvivesLogout, "offline-survives-logout", false, "refresh tokens granted with offline_access survive the end of the SSO session")
	f.StringSliceVar(&spec.Resources, "resource", nil, "RFC 8707 resource (API) URI its access tokens may be for; the first is the default audience (repeatable)")
	f.StringSliceVar(&spec.AllowedScopes, "allowed-scopes", nil, "scopes beyond the OpenID Connect ones it may ask for, e.g. gatehouse:admin (comma-separated or repeated)")
	f.BoolVar(&spec.RequirePAR, "require-par", false, "sign-ins start only from a pushed authorization request (RFC 9126)")
	f.BoolVar(&spec.RequireDPoP, "require-dpop", false, "every token request needs a DPoP proof (RFC 9449): all its access tokens are bound to the client's key")
	f.StringVar(&spec.IDTokenSigningAlg, "id-token-signing-alg", "", idTokenSigningAlgHelp)
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
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				list, err := svc.ListClients(ctx, admin.CLI)
				if err != nil {
					return err
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
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				c, secret, err := svc.RotateSecret(ctx, admin.CLI, args[0], "")
				if err != nil {
					return err
				}
				return printSecret(e, asJSON, c, secret, "shown only now; the old secret no longer works")
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
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				if err := svc.DeleteClient(ctx, admin.CLI, args[0], ""); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
}

// clientsUpdateCmd changes the settings given on the command line and
// leaves the others as they are; the result is checked like a new client.
func clientsUpdateCmd(e *env) *cobra.Command {
	var name, bcURI, accessToken, jwksURI, jwksFile, authMethod, signingAlg string
	var redirects, postLogout, resources, grants, scopes []string
	var bcSession, offline, requireMFA, requireConsent, requirePAR, requireDPoP bool
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Change a client's redirect URIs, back-channel logout, offline-token and sign-in settings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var u admin.ClientUpdate
			given := func(flag string) bool { return f.Changed(flag) }
			if given("name") {
				u.Name = &name
			}
			if given("redirect-uri") {
				u.RedirectURIs = &redirects
			}
			if given("post-logout-redirect-uri") {
				u.PostLogoutRedirectURIs = &postLogout
			}
			if given("resource") {
				u.Resources = &resources
			}
			if given("allowed-scopes") {
				u.AllowedScopes = &scopes
			}
			if given("grant-types") {
				u.GrantTypes = &grants
			}
			if given("access-token") {
				u.AccessTokenFormat = &accessToken
			}
			if given("backchannel-logout-uri") {
				u.BackchannelLogoutURI = &bcURI
			}
			if given("backchannel-logout-session-required") {
				u.BackchannelLogoutSessionRequired = &bcSession
			}
			if given("offline-survives-logout") {
				u.OfflineSurvivesLogout = &offline
			}
			if given("require-mfa") {
				u.RequireMFA = &requireMFA
			}
			if given("require-consent") {
				u.RequireConsent = &requireConsent
			}
			if given("require-par") {
				u.RequirePAR = &requirePAR
			}
			if given("require-dpop") {
				u.RequireDPoP = &requireDPoP
			}
			if given("auth-method") {
				u.AuthMethod = &authMethod
			}
			if given("jwks-uri") {
				u.JWKSURI = &jwksURI
			}
			if given("id-token-signing-alg") {
				u.IDTokenSigningAlg = &signingAlg
			}
			if given("jwks-file") {
				doc, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				u.JWKS = &doc
			}
			if u == (admin.ClientUpdate{}) {
				return errors.New("nothing to change: give at least one setting (see --help)")
			}
			return withAdmin(cmd, e, func(ctx context.Context, svc *admin.Service) error {
				c, err := svc.UpdateClient(ctx, admin.CLI, args[0], u, "")
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "updated client %s\n", c.ID)
				if admin.UsesSecret(c.AuthMethod) && !c.HasSecret {
					fmt.Fprintf(e.stdout, "it has no secret yet: gatehouse clients rotate-secret %s\n", c.ID)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name (shown on the consent page)")
	f.StringSliceVar(&redirects, "redirect-uri", nil, "redirect URI (repeatable; the list replaces the registered one)")
	f.StringSliceVar(&postLogout, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable; replaces the list)")
	f.StringSliceVar(&resources, "resource", nil, "RFC 8707 resource URI (repeatable; replaces the list)")
	f.StringSliceVar(&grants, "grant-types", nil, "authorization_code, refresh_token, client_credentials, device_code (replaces the list)")
	f.StringVar(&accessToken, "access-token", "", "access token format: opaque or jwt")
	f.StringSliceVar(&scopes, "allowed-scopes", nil, "scopes beyond the OpenID Connect ones it may ask for (replaces the list; empty removes them)")
	f.StringVar(&bcURI, "backchannel-logout-uri", "", "where logout tokens are POSTed (https, or http on loopback); empty removes it")
	f.BoolVar(&bcSession, "backchannel-logout-session-required", false, "the client needs sid in logout tokens")
	f.BoolVar(&offline, "offline-survives-logout", false, "refresh tokens granted with offline_access survive the end of the SSO session")
	f.BoolVar(&requireMFA, "require-mfa", false, "every sign-in into this client needs two factors")
	f.BoolVar(&requireConsent, "require-consent", false, "ask users for consent")
	f.BoolVar(&requirePAR, "require-par", false, "sign-ins start only from a pushed authorization request (RFC 9126)")
	f.BoolVar(&requireDPoP, "require-dpop", false, "every token request needs a DPoP proof (RFC 9449)")
	f.StringVar(&authMethod, "auth-method", "", "client_secret_basic, client_secret_post or private_key_jwt (a confidential client; to private_key_jwt drops the secret, from it drops the keys: then rotate-secret)")
	f.StringVar(&jwksURI, "jwks-uri", "", "private_key_jwt: URL of the client's public keys (replaces a registered JWKS)")
	f.StringVar(&jwksFile, "jwks-file", "", "private_key_jwt: file holding the client's public keys as a JWKS (replaces a registered jwks_uri)")
	f.StringVar(&signingAlg, "id-token-signing-alg", "", idTokenSigningAlgHelp+`; "" returns to the default`)
	return cmd
}

// idTokenSigningAlgHelp describes --id-token-signing-alg.
const idTokenSigningAlgHelp = "algorithm of the client's ID tokens, JWT access tokens and logout tokens (id_token_signed_response_alg): " +
	"RS256, ES256 or EdDSA (default: GATEHOUSE_SIGNING_ALG)"
