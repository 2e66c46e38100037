package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/op/clientkeys"
	"github.com/gatehouse-id/gatehouse/storage"
)

// Client is a registered client as administrators see it: whether it has a
// secret, never the secret or its hash.
type Client struct {
	ID                               string
	Name                             string
	Type                             string // storage.AppTypeWeb, …
	AuthMethod                       string // storage.AuthMethodBasic, …
	HasSecret                        bool
	GrantTypes                       []string
	RedirectURIs                     []string
	PostLogoutRedirectURIs           []string
	AccessTokenFormat                string
	RequireConsent                   bool
	RequireMFA                       bool
	Resources                        []string
	AllowedScopes                    []string
	BackchannelLogoutURI             string
	BackchannelLogoutSessionRequired bool
	OfflineSurvivesLogout            bool
	RequirePAR                       bool // pushed authorization requests (RFC 9126)
	RequireDPoP                      bool // DPoP (RFC 9449)
	// private_key_jwt: the registered public keys (JWKS JSON) or their URL.
	JWKS    json.RawMessage
	JWKSURI string
	// IDTokenSigningAlg signs the client's ID tokens, JWT access tokens
	// and logout tokens; "" is the server's default.
	IDTokenSigningAlg string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Version changes with every change of the client; give it back as
	// the expected version of an update.
	Version string
}

func clientView(c *storage.Client) *Client {
	return &Client{
		ID: c.ID, Name: c.Name, Type: c.AppType, AuthMethod: c.AuthMethod, HasSecret: len(c.SecretHash) > 0,
		GrantTypes: c.GrantTypes, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		AccessTokenFormat: c.AccessTokenFormat, RequireConsent: c.RequireConsent, RequireMFA: c.RequireMFA,
		Resources: c.Resources, AllowedScopes: c.AllowedScopes, BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired, OfflineSurvivesLogout: c.OfflineSurvivesLogout,
		RequirePAR: c.RequirePAR, RequireDPoP: c.RequireDPoP, JWKS: jwksOf(c), JWKSURI: c.JWKSURI,
		IDTokenSigningAlg: c.IDTokenSignedResponseAlg, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: version(c.Version),
	}
}

func noClient(id string) *Error { return notFound("no client with id %q", id) }

// ListClients returns every client, ordered by ID.
func (s *Service) ListClients(ctx context.Context, a Actor) ([]Client, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	list, err := s.store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out := make([]Client, 0, len(list))
	for i := range list {
		out = append(out, *clientView(&list[i]))
	}
	return out, nil
}

// GetClient returns the client with id.
func (s *Service) GetClient(ctx context.Context, a Actor, id string) (*Client, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	c, err := s.loadClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return clientView(c), nil
}

// CreateClient registers a client. A confidential client gets a new secret,
// returned once here: only its hash is stored.
func (s *Service) CreateClient(ctx context.Context, a Actor, spec ClientSpec) (*Client, string, error) {
	if err := begin(a); err != nil {
		return nil, "", err
	}
	c, err := spec.Client(s.now())
	if err != nil {
		return nil, "", err
	}
	var secret string
	if UsesSecret(c.AuthMethod) {
		secret = NewClientSecret()
		c.SecretHash = HashClientSecret(secret)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, "", conflict("id", "a client with id %q already exists", c.ID)
		}
		return nil, "", fmt.Errorf("create client: %w", err)
	}
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditClientCreated, Subject: c.ID, ClientID: c.ID})
	return clientView(c), secret, nil
}

// ClientUpdate is a change to a client: nil fields stay as they are. The
// result is validated like a new client, by the same rules.
type ClientUpdate struct {
	Name                             *string
	RedirectURIs                     *[]string
	PostLogoutRedirectURIs           *[]string
	GrantTypes                       *[]string
	AccessTokenFormat                *string
	Resources                        *[]string
	AllowedScopes                    *[]string
	RequireConsent                   *bool
	RequireMFA                       *bool
	BackchannelLogoutURI             *string
	BackchannelLogoutSessionRequired *bool
	OfflineSurvivesLogout            *bool
	RequirePAR                       *bool // pushed authorization requests (RFC 9126)
	RequireDPoP                      *bool // DPoP (RFC 9449)
	// AuthMethod switches a confidential client between
	// client_secret_basic, client_secret_post (dynamic client
	// registration's update, RFC 7592) and private_key_jwt (the console,
	// the admin API). A public client stays public. Switching to
	// private_key_jwt drops the secret; switching from it drops the keys
	// unless the update gives some (which the rules then refuse) and
	// leaves the client without a secret until one is rotated in.
	AuthMethod *string
	// private_key_jwt keys: giving one of the two replaces the other.
	JWKS    *json.RawMessage
	JWKSURI *string
	// IDTokenSigningAlg: RS256, ES256, EdDSA, or "" for the default.
	IDTokenSigningAlg *string
}

// UsesSecret reports whether a client of auth method authenticates with
// a client secret (and so has one, or needs one rotated in).
func UsesSecret(method string) bool {
	return method == storage.AuthMethodBasic || method == storage.AuthMethodPost
}

// apply sets the given fields of spec and returns what changed, for the
// audit trail (lists as space-separated values).
func (u ClientUpdate) apply(spec *ClientSpec) map[string]string {
	changed := map[string]string{}
	setStr := func(name string, v *string, dst *string) {
		if v != nil && *v != *dst {
			*dst = *v
			changed[name] = *v
		}
	}
	setList := func(name string, v *[]string, dst *[]string) {
		if v != nil && !slices.Equal(*v, *dst) {
			*dst = slices.Clone(*v)
			changed[name] = strings.Join(*v, " ")
		}
	}
	setBool := func(name string, v *bool, dst *bool) {
		if v != nil && *v != *dst {
			*dst = *v
			changed[name] = strconv.FormatBool(*v)
		}
	}
	setStr("name", u.Name, &spec.Name)
	setList("redirect_uris", u.RedirectURIs, &spec.RedirectURIs)
	setList("post_logout_redirect_uris", u.PostLogoutRedirectURIs, &spec.PostLogoutRedirectURIs)
	setList("grant_types", u.GrantTypes, &spec.GrantTypes)
	setStr("access_token", u.AccessTokenFormat, &spec.AccessToken)
	setList("resources", u.Resources, &spec.Resources)
	setList("allowed_scopes", u.AllowedScopes, &spec.AllowedScopes)
	setBool("require_consent", u.RequireConsent, &spec.RequireConsent)
	setBool("require_mfa", u.RequireMFA, &spec.RequireMFA)
	setStr("backchannel_logout_uri", u.BackchannelLogoutURI, &spec.BackchannelLogoutURI)
	setBool("backchannel_logout_session_required", u.BackchannelLogoutSessionRequired, &spec.BackchannelLogoutSessionRequired)
	setBool("offline_survives_logout", u.OfflineSurvivesLogout, &spec.OfflineSurvivesLogout)
	setBool("require_par", u.RequirePAR, &spec.RequirePAR)
	setBool("require_dpop", u.RequireDPoP, &spec.RequireDPoP)
	setStr("auth_method", u.AuthMethod, &spec.AuthMethod)
	setStr("id_token_signed_response_alg", u.IDTokenSigningAlg, &spec.IDTokenSigningAlg)
	u.applyKeys(spec, changed)
	return changed
}

// isNoJWKS: a JWKS given as nothing or null removes the registered one.
func isNoJWKS(doc []byte) bool {
	doc = bytes.TrimSpace(doc)
	return len(doc) == 0 || bytes.Equal(doc, []byte("null"))
}

// applyKeys: a client has a JWKS or a jwks_uri, so giving one drops the
// other. The audit trail says the JWKS was replaced, not what it holds.
func (u ClientUpdate) applyKeys(spec *ClientSpec, changed map[string]string) {
	switch {
	case u.JWKS != nil && isNoJWKS(*u.JWKS):
		if len(spec.JWKS) > 0 {
			spec.JWKS = nil
			changed["jwks"] = "removed"
		}
	case u.JWKS != nil:
		given := []byte(*u.JWKS)
		if norm, err := clientkeys.Normalize(given); err == nil {
			given = []byte(norm) // compare like with like; a bad one fails validation
		}
		if !bytes.Equal(given, spec.JWKS) {
			spec.JWKS = slices.Clone(given)
			changed["jwks"] = "replaced"
			if u.JWKSURI == nil && spec.JWKSURI != "" {
				spec.JWKSURI = ""
				changed["jwks_uri"] = ""
			}
		}
	}
	if u.JWKSURI != nil && *u.JWKSURI != spec.JWKSURI {
		spec.JWKSURI = *u.JWKSURI
		changed["jwks_uri"] = *u.JWKSURI
		if u.JWKS == nil && len(spec.JWKS) > 0 {
			spec.JWKS = nil
			changed["jwks"] = "removed"
		}
	}
	// A client leaving private_key_jwt has no use for its keys, and the
	// rules refuse keys on any other method: without this, the admin API
	// could not switch a client with a registered JWKS away (its JSON null
	// means "leave it as it is", not "none").
	if spec.AuthMethod != storage.AuthMethodPrivateKeyJWT && u.JWKS == nil && u.JWKSURI == nil {
		if len(spec.JWKS) > 0 {
			spec.JWKS = nil
			changed["jwks"] = "removed"
		}
		if spec.JWKSURI != "" {
			spec.JWKSURI = ""
			changed["jwks_uri"] = ""
		}
	}
}

// UpdateClient changes the given settings of client id, checked like a new
// client, and leaves the others (and the secret) as they are. An update
// that changes nothing writes nothing and is not audited.
func (s *Service) UpdateClient(ctx context.Context, a Actor, id string, u ClientUpdate, expected string) (*Client, error) {
	if err := begin(a); err != nil {
		return nil, err
	}
	var changed map[string]string
	c, err := s.changeClient(ctx, id, expected, func(c *storage.Client) (bool, error) {
		spec := specOf(c)
		changed = u.apply(&spec)
		if len(changed) == 0 {
			return false, nil
		}
		next, err := spec.Client(s.now())
		if err != nil {
			return false, err
		}
		next.CreatedAt, next.Version = c.CreatedAt, c.Version
		// A client that no longer authenticates with its secret loses it,
		// so switching back later cannot revive a secret that may have
		// leaked meanwhile; a client switched to a secret method from one
		// without has none until RotateSecret gives it one.
		if UsesSecret(next.AuthMethod) {
			next.SecretHash = c.SecretHash
		}
		*c = *next
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if len(changed) > 0 {
		s.forgetClient(id)
		s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditClientUpdated, Subject: id, ClientID: id, Detail: maps.Clone(changed)})
	}
	return clientView(c), nil
}

// RotateSecret gives a confidential client a new secret, returned once;
// the old one stops working at once.
func (s *Service) RotateSecret(ctx context.Context, a Actor, id, expected string) (*Client, string, error) {
	if err := begin(a); err != nil {
		return nil, "", err
	}
	secret := NewClientSecret()
	c, err := s.changeClient(ctx, id, expected, func(c *storage.Client) (bool, error) {
		if c.AuthMethod == storage.AuthMethodNone {
			return false, conflict("", "client %q is public and has no secret", c.ID)
		}
		if !UsesSecret(c.AuthMethod) {
			return false, conflict("", "client %q authenticates with %s and has no secret", c.ID, c.AuthMethod)
		}
		c.SecretHash = HashClientSecret(secret)
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	s.forgetClient(id)
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditClientSecretRotated, Subject: id, ClientID: id})
	return clientView(c), secret, nil
}

// DeleteClient deletes the client with its grants and consents. The
// expected version is checked before; a change between the check and the
// deletion is not detected (the client is gone either way).
func (s *Service) DeleteClient(ctx context.Context, a Actor, id, expected string) error {
	if err := begin(a); err != nil {
		return err
	}
	if !storable(id) {
		return noClient(id)
	}
	if expected != "" {
		c, err := s.loadClient(ctx, id)
		if err != nil {
			return err
		}
		if !matches(expected, c.Version) {
			return versionMismatch("the client")
		}
	}
	if err := s.store.DeleteClient(ctx, id); err != nil {
		return storeErr(err, noClient(id).Message, "delete client")
	}
	s.forgetClient(id)
	s.audit(ctx, a, storage.AuditEvent{Action: storage.AuditClientDeleted, Subject: id, ClientID: id})
	return nil
}

// loadClient reads client id, "no such client" when there is none; an ID
// no store can hold is no client's either (loadUser).
func (s *Service) loadClient(ctx context.Context, id string) (*storage.Client, error) {
	if !storable(id) {
		return nil, noClient(id)
	}
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return nil, storeErr(err, noClient(id).Message, "load client")
	}
	return c, nil
}

// changeClient is changeUser for clients: read, check the expected
// version, change, write with compare-and-set, retrying a lost race when
// no version was expected.
func (s *Service) changeClient(ctx context.Context, id, expected string, change func(c *storage.Client) (bool, error)) (*storage.Client, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.loadClient(ctx, id)
		if err != nil {
			return nil, err
		}
		if !matches(expected, c.Version) {
			return nil, versionMismatch("the client")
		}
		changed, err := change(c)
		if err != nil || !changed {
			return c, err
		}
		c.UpdatedAt = s.now()
		err = s.store.UpdateClient(ctx, c)
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, storage.ErrConflict) && expected == "" && attempt < maxChangeRetries:
			continue
		case errors.Is(err, storage.ErrConflict):
			return nil, versionMismatch("the client")
		default:
			return nil, storeErr(err, noClient(id).Message, "update client")
		}
	}
}
