package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func upstreamsCmd(e *env) *cobra.Command {
	return group("upstreams", "Upstream identity providers users may sign in through (GitHub, OpenID Connect)",
		withNamedSettings(upstreamsListCmd(e), "issuer", "addr", "upstreams-file", "github-client-id", "github-client-secret",
			"github-client-secret-file", "github-url", "github-allowed-orgs", "upstream-signup"))
}

// upstreamJSON is an upstream as `upstreams list --json` prints it: never
// the secret.
type upstreamJSON struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer,omitempty"`
	URL         string   `json:"url,omitempty"`
	APIURL      string   `json:"api_url,omitempty"`
	ClientID    string   `json:"client_id"`
	Scopes      []string `json:"scopes"`
	AllowedOrgs []string `json:"allowed_orgs,omitempty"`
	Signup      bool     `json:"signup"`
	// CallbackURL is the redirect URI to register at the upstream.
	CallbackURL string `json:"callback_url"`
}

// upstreamsListCmd prints the configured upstreams with the callback URL
// each needs registered on its side. It reads the configuration only (no
// store), so an admin can run it before the first start.
func upstreamsListCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the configured upstreams and the callback URL to register at each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := setup(cmd, e)
			if err != nil {
				return err
			}
			out := make([]upstreamJSON, 0, len(cfg.Upstreams))
			for _, u := range cfg.Upstreams {
				j := upstreamJSON{
					ID: u.ID, Type: u.Type, Name: u.Name, Issuer: u.Issuer, URL: u.URL, ClientID: u.ClientID,
					Scopes: u.Scopes, AllowedOrgs: u.AllowedOrgs, Signup: u.SignupAllowed(cfg.UpstreamSignup),
					CallbackURL: u.CallbackURL(cfg.Issuer),
				}
				if u.Type == "github" {
					j.APIURL = u.APIURL()
				}
				out = append(out, j)
			}
			if asJSON {
				return printJSON(e.stdout, out)
			}
			if len(out) == 0 {
				fmt.Fprintln(e.stderr, "no upstreams configured (GATEHOUSE_UPSTREAMS_FILE, GATEHOUSE_GITHUB_CLIENT_ID)")
				return nil
			}
			for _, u := range out {
				where := u.Issuer
				if where == "" {
					where = u.URL
				}
				fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\tcallback=%s\tscopes=%s\tsignup=%t\n",
					u.ID, u.Type, u.Name, where, u.CallbackURL, strings.Join(u.Scopes, " "), u.Signup)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
