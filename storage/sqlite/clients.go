package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gatehouse-id/gatehouse/storage"
)

const clientColumns = `id, name, secret_hash, redirect_uris, post_logout_redirect_uris, app_type,
	auth_method, grant_types, access_token_format, require_consent, created_at, updated_at, resources,
	require_mfa, backchannel_logout_uri, backchannel_logout_session_required, offline_survives_logout, version, allowed_scopes,
	require_par, require_dpop, jwks, jwks_uri, id_token_signed_response_alg`

func scanClient(row rowScanner) (*storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, listCol{&c.RedirectURIs}, listCol{&c.PostLogoutRedirectURIs},
		&c.AppType, &c.AuthMethod, listCol{&c.GrantTypes}, &c.AccessTokenFormat, &c.RequireConsent,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, listCol{&c.Resources}, &c.RequireMFA,
		&c.BackchannelLogoutURI, &c.BackchannelLogoutSessionRequired, &c.OfflineSurvivesLogout, &c.Version, listCol{&c.AllowedScopes},
		&c.RequirePAR, &c.RequireDPoP, &c.JWKS, &c.JWKSURI, &c.IDTokenSignedResponseAlg)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// clientLists encodes the client's list fields in column order.
func clientLists(c *storage.Client) (redirects, postLogout, grantTypes, resources, scopes string, err error) {
	if redirects, err = jsonList(c.RedirectURIs); err != nil {
		return
	}
	if postLogout, err = jsonList(c.PostLogoutRedirectURIs); err != nil {
		return
	}
	if grantTypes, err = jsonList(c.GrantTypes); err != nil {
		return
	}
	if resources, err = jsonList(c.Resources); err != nil {
		return
	}
	scopes, err = jsonList(c.AllowedScopes)
	return
}

// CreateClient inserts c at version 1; ErrConflict if its ID is taken.
func (s *Store) CreateClient(ctx context.Context, c *storage.Client) error {
	const what = "sqlite: create client"
	redirects, postLogout, grantTypes, resources, scopes, err := clientLists(c)
	if err != nil {
		return wrapErr(what, err)
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, optBytes(c.SecretHash), redirects, postLogout, c.AppType,
		c.AuthMethod, grantTypes, c.AccessTokenFormat, c.RequireConsent, millis(c.CreatedAt), millis(c.UpdatedAt), resources,
		c.RequireMFA, c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, c.OfflineSurvivesLogout, scopes, c.RequirePAR,
		c.RequireDPoP, c.JWKS, c.JWKSURI, c.IDTokenSignedResponseAlg)
	if err != nil {
		return wrapErr(what, err)
	}
	c.Version = 1
	return nil
}

// GetClient returns the client with id.
func (s *Store) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	c, err := scanClient(s.q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	return c, wrapErr("sqlite: get client", err)
}

// ListClients returns every client ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, wrapErr("sqlite: list clients", err)
	}
	defer rows.Close()
	var clients []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrapErr("sqlite: list clients", err)
		}
		clients = append(clients, *c)
	}
	return clients, wrapErr("sqlite: list clients", rows.Err())
}

// UpdateClient replaces every field of the client c.ID except CreatedAt,
// if c.Version is 0 or still the stored version (compare-and-set).
func (s *Store) UpdateClient(ctx context.Context, c *storage.Client) error {
	const what = "sqlite: update client"
	redirects, postLogout, grantTypes, resources, scopes, err := clientLists(c)
	if err != nil {
		return wrapErr(what, err)
	}
	var version int64
	err = s.q.QueryRowContext(ctx, `UPDATE clients SET name = ?, secret_hash = ?, redirect_uris = ?,
		post_logout_redirect_uris = ?, app_type = ?, auth_method = ?, grant_types = ?,
		access_token_format = ?, require_consent = ?, updated_at = ?, resources = ?, require_mfa = ?,
		backchannel_logout_uri = ?, backchannel_logout_session_required = ?, offline_survives_logout = ?,
		allowed_scopes = ?, require_par = ?, require_dpop = ?, jwks = ?, jwks_uri = ?, id_token_signed_response_alg = ?,
		version = version + 1
		WHERE id = ? AND (? = 0 OR version = ?) RETURNING version`,
		c.Name, optBytes(c.SecretHash), redirects, postLogout, c.AppType, c.AuthMethod, grantTypes,
		c.AccessTokenFormat, c.RequireConsent, millis(c.UpdatedAt), resources, c.RequireMFA,
		c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, c.OfflineSurvivesLogout, scopes, c.RequirePAR, c.RequireDPoP, c.JWKS, c.JWKSURI,
		c.IDTokenSignedResponseAlg, c.ID,
		c.Version, c.Version).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) && c.Version != 0 {
		// Missing, or changed since it was read: a second look tells which.
		if _, err := s.GetClient(ctx, c.ID); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return fmt.Errorf("%s: the client was changed since it was read: %w", what, storage.ErrConflict)
	}
	if err != nil {
		return wrapErr(what, err)
	}
	c.Version = version
	return nil
}

// DeleteClient deletes the client; the schema cascades to its auth requests,
// grants (and their refresh tokens), consents and logout deliveries.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return execOne(ctx, s.q, "sqlite: delete client", `DELETE FROM clients WHERE id = ?`, id)
}
