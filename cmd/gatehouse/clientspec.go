package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/op/backchannel"
	"github.com/gatehouse-id/gatehouse/storage"
)

// clientSpec is a client as an administrator describes it, on the command
// line or in the clients file.
type clientSpec struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	Type                   string   `json:"type"`
	Public                 bool     `json:"public"`
	AuthMethod             string   `json:"auth_method"`
	GrantTypes             []string `json:"grant_types"`
	AccessToken            string   `json:"access_token"`
	RequireConsent         bool     `json:"require_consent"`
	RequireMFA             bool     `json:"require_mfa"`
	Resources              []string `json:"resources"`
	// Back-channel logout (OIDC Back-Channel Logout 1.0) and what an SSO
	// session's end does to this client's offline tokens.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required"`
	OfflineSurvivesLogout            bool   `json:"offline_survives_logout"`
	// Clients file only: the secret in clear, or its SHA-256 in hex.
	Secret       string `json:"secret"`
	SecretSHA256 string `json:"secret_sha256"`
}

// clientIDPattern keeps IDs safe everywhere they travel (URLs, Basic auth,
// token internals that use ':' as a separator).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

const (
	grantCode              = "authorization_code"
	grantRefresh           = "refresh_token"
	grantClientCredentials = "client_credentials"
)

// toClient validates the spec and builds the stored client. It does not set
// the secret; callers do.
func (s clientSpec) toClient(now time.Time) (*storage.Client, error) {
	c := &storage.Client{
		ID: s.ID, Name: strings.TrimSpace(s.Name), CreatedAt: now, UpdatedAt: now,
		RedirectURIs: s.RedirectURIs, PostLogoutRedirectURIs: s.PostLogoutRedirectURIs,
		RequireConsent: s.RequireConsent, RequireMFA: s.RequireMFA, Resources: s.Resources,
		BackchannelLogoutURI: s.BackchannelLogoutURI, BackchannelLogoutSessionRequired: s.BackchannelLogoutSessionRequired,
		OfflineSurvivesLogout: s.OfflineSurvivesLogout,
	}
	if c.ID == "" {
		c.ID = newClientID()
	}
	if !clientIDPattern.MatchString(c.ID) {
		return nil, fmt.Errorf("client id %q: use 1–128 letters, digits, '.', '_' or '-'", c.ID)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	c.AppType = s.Type
	if c.AppType == "" {
		c.AppType = storage.AppTypeWeb
	}
	if !slices.Contains([]string{storage.AppTypeWeb, storage.AppTypeNative, storage.AppTypeSPA}, c.AppType) {
		return nil, fmt.Errorf("type %q: use web, native or spa", s.Type)
	}
	switch {
	case s.Public && s.AuthMethod != "" && s.AuthMethod != storage.AuthMethodNone:
		return nil, fmt.Errorf("auth method %q: a public client has no secret (auth method none)", s.AuthMethod)
	case s.Public:
		c.AuthMethod = storage.AuthMethodNone
	case s.AuthMethod == "":
		c.AuthMethod = storage.AuthMethodBasic
	case s.AuthMethod == storage.AuthMethodBasic || s.AuthMethod == storage.AuthMethodPost:
		c.AuthMethod = s.AuthMethod
	case s.AuthMethod == storage.AuthMethodNone:
		return nil, errors.New("auth method none: use --public")
	default:
		return nil, fmt.Errorf("auth method %q: use client_secret_basic or client_secret_post", s.AuthMethod)
	}
	c.GrantTypes = s.GrantTypes
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{grantCode, grantRefresh}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains([]string{grantCode, grantRefresh, grantClientCredentials}, g) {
			return nil, fmt.Errorf("grant type %q: use authorization_code, refresh_token or client_credentials", g)
		}
	}
	if slices.Contains(c.GrantTypes, grantClientCredentials) && c.AuthMethod == storage.AuthMethodNone {
		return nil, errors.New("grant type client_credentials needs a confidential client")
	}
	if slices.Contains(c.GrantTypes, grantCode) && len(c.RedirectURIs) == 0 {
		return nil, errors.New("at least one redirect URI is required for the authorization_code grant")
	}
	for _, u := range c.RedirectURIs {
		if err := checkRedirectURI(u, c.AppType); err != nil {
			return nil, fmt.Errorf("redirect URI %q: %w", u, err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u, c.AppType); err != nil {
			return nil, fmt.Errorf("post-logout redirect URI %q: %w", u, err)
		}
	}
	for _, u := range c.Resources {
		if err := checkResource(u); err != nil {
			return nil, fmt.Errorf("resource %q: %w", u, err)
		}
	}
	if c.BackchannelLogoutURI != "" {
		if err := backchannel.ValidateURI(c.BackchannelLogoutURI); err != nil {
			return nil, fmt.Errorf("back-channel logout URI %q: %w", c.BackchannelLogoutURI, err)
		}
	} else if c.BackchannelLogoutSessionRequired {
		return nil, errors.New("backchannel-logout-session-required needs a back-channel logout URI")
	}
	switch s.AccessToken {
	case "", storage.AccessTokenOpaque:
		c.AccessTokenFormat = storage.AccessTokenOpaque
	case storage.AccessTokenJWT:
		c.AccessTokenFormat = storage.AccessTokenJWT
	default:
		return nil, fmt.Errorf("access token %q: use opaque or jwt", s.AccessToken)
	}
	return c, nil
}

// checkResource: an RFC 8707 resource indicator is an absolute URI without a
// fragment (§2); https, or http on a loopback host for development.
func checkResource(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopbackHost(u.Hostname())) {
		return errors.New("must be https (http only on localhost or a loopback address)")
	}
	return nil
}

// checkRedirectURI: absolute, no fragment; https, or http on a loopback host
// (local development), or a private-use scheme for native apps (RFC 8252).
func checkRedirectURI(raw, appType string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	// The authorization endpoint compares the string as registered and takes
	// only a lower-case http:// or https:// for one: HTTPS://… would never match.
	if (u.Scheme == "https" || u.Scheme == "http") && !strings.HasPrefix(raw, u.Scheme+":") {
		return fmt.Errorf("write the scheme in lower case (%s:)", u.Scheme)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return errors.New("must name a host")
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("http is allowed only for localhost and loopback addresses; use https")
		}
	default:
		if appType != storage.AppTypeNative {
			return errors.New("custom schemes are allowed only for native clients")
		}
	}
	return nil
}

func newClientID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "gh-" + hex.EncodeToString(b)
}

func newClientSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
