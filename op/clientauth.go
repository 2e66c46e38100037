package op

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/httpobs"
	"github.com/gatehouse-id/gatehouse/storage"
)

// authenticateRequestClient authenticates the client of a token, revocation
// or introspection request with the one method it is registered for. A client
// registered for client_secret_basic that posts its secret in the body (or the
// reverse) is refused: accepting any method would let a leaked secret be used
// in ways the registration did not foresee.
func (p *Provider) authenticateRequestClient(ctx context.Context, header http.Header, form url.Values) (*client, error) {
	basicID, basicSecret, hasBasic, err := basicCredentials(header)
	if err != nil {
		return nil, errInvalidClient("malformed Authorization header")
	}
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	switch {
	case form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "":
		if hasBasic || formSecret != "" {
			return nil, zop.NewStatusError(oidc.ErrInvalidRequest().WithDescription("use only one client authentication method"), http.StatusBadRequest)
		}
		return p.authenticateAssertion(ctx, form)
	case hasBasic && formSecret != "":
		return nil, zop.NewStatusError(oidc.ErrInvalidRequest().WithDescription("use only one client authentication method"), http.StatusBadRequest)
	case hasBasic && formID != "" && formID != basicID:
		return nil, zop.NewStatusError(oidc.ErrInvalidRequest().WithDescription("client_id does not match the Authorization header"), http.StatusBadRequest)
	}
	id, secret := formID, formSecret
	if hasBasic {
		id, secret = basicID, basicSecret
	}
	if id == "" {
		return nil, errInvalidClient("client authentication is required")
	}
	c, err := p.client(ctx, id)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Same answer as a wrong secret: the response does not say which
			// client IDs exist.
			return nil, errInvalidClient("client authentication failed")
		}
		return nil, err
	}
	switch c.c.AuthMethod {
	case storage.AuthMethodNone:
		if secret != "" {
			return nil, errInvalidClient("this client is public and has no secret")
		}
		httpobs.SetClientID(ctx, id)
		return c, nil
	case storage.AuthMethodPrivateKeyJWT:
		// One method per client: a key-based client has no secret to send.
		return nil, errInvalidClient("this client must authenticate with private_key_jwt")
	case storage.AuthMethodPost:
		if hasBasic {
			return nil, errInvalidClient("this client must authenticate with client_secret_post")
		}
	default:
		if !hasBasic {
			return nil, errInvalidClient("this client must authenticate with client_secret_basic")
		}
	}
	if len(c.c.SecretHash) == 0 || subtle.ConstantTimeCompare(sha256Bytes(secret), c.c.SecretHash) != 1 {
		return nil, errInvalidClient("client authentication failed")
	}
	httpobs.SetClientID(ctx, id) // for the access log
	return c, nil
}

// basicCredentials parses HTTP Basic client credentials, which RFC 6749
// §2.3.1 form-urlencodes before base64.
func basicCredentials(h http.Header) (id, secret string, ok bool, err error) {
	auth := h.Get("Authorization")
	if auth == "" {
		return "", "", false, nil
	}
	r := http.Request{Header: http.Header{"Authorization": {auth}}}
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		if strings.HasPrefix(strings.ToLower(auth), "basic ") {
			return "", "", false, errors.New("malformed basic credentials")
		}
		return "", "", false, nil // another scheme (e.g. Bearer) is not client auth
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false, err
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false, err
	}
	return id, secret, true, nil
}
