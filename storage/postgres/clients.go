package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/storage"
)

const clientColumns = `id, name, secret_hash, redirect_uris, post_logout_redirect_uris, app_type,
	auth_method, grant_types, access_token_format, require_consent, created_at, updated_at, resources,
	require_mfa, backchannel_logout_uri, backchannel_logout_session_required, offline_survives_logout, version, allowed_scopes,
	require_par, require_dpop, jwks, jwks_uri, id_token_signed_response_alg`

func scanClient(row rowScanner) (*storage.Client, error) {
	var c storage.Client
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.RedirectURIs, &c.PostLogoutRedirectURIs,
		&c.AppType, &c.AuthMethod, &c.GrantTypes, &c.AccessTokenFormat, &c.RequireConsent,
		timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, &c.Resources, &c.RequireMFA,
		&c.BackchannelLogoutURI, &c.BackchannelLogoutSessionRequired, &c.OfflineSurvivesLogout, &c.Version, &c.AllowedScopes,
		&c.RequirePAR, &c.RequireDPoP, &c.JWKS, &c.JWKSURI, &c.IDTokenSignedResponseAlg)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateClient inserts c at version 1; ErrConflict if its ID is taken.
func (s *Store) CreateClient(ctx context.Context, c *storage.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1, $18, $19, $20, $21, $22, $23)`,
		c.ID, c.Name, optBytes(c.SecretHash), list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.AppType,
		c.AuthMethod, list(c.GrantTypes), c.AccessTokenFormat, c.RequireConsent, c.CreatedAt, c.UpdatedAt,
		list(c.Resources), c.RequireMFA, c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired,
		c.OfflineSurvivesLogout, list(c.AllowedScopes), c.RequirePAR, c.RequireDPoP, c.JWKS, c.JWKSURI,
		c.IDTokenSignedResponseAlg)
	if err != nil {
		return wrapErr("postgres: create client", err)
	}
	c.Version = 1
	return nil
}

// GetClient returns the client with id.
func (s *Store) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	return c, wrapErr("postgres: get client", err)
}

// ListClients returns every client ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, wrapErr("postgres: list clients", err)
	}
	defer rows.Close()
	var clients []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrapErr("postgres: list clients", err)
		}
		clients = append(clients, *c)
	}
	return clients, wrapErr("postgres: list clients", rows.Err())
}

// UpdateClient replaces every field of the client c.ID except CreatedAt,
// if c.Version is 0 or still the stored version (compare-and-set).
func (s *Store) UpdateClient(ctx context.Context, c *storage.Client) error {
	const what = "postgres: update client"
	var version int64
	err := s.pool.QueryRow(ctx, `UPDATE clients SET name = $1, secret_hash = $2,
		redirect_uris = $3, post_logout_redirect_uris = $4, app_type = $5, auth_method = $6, grant_types = $7,
		access_token_format = $8, require_consent = $9, updated_at = $10, resources = $11, require_mfa = $12,
		backchannel_logout_uri = $13, backchannel_logout_session_required = $14, offline_survives_logout = $15,
		allowed_scopes = $18, require_par = $19, require_dpop = $20, jwks = $21, jwks_uri = $22,
		id_token_signed_response_alg = $23, version = version + 1
		WHERE id = $16 AND ($17::bigint = 0 OR version = $17::bigint) RETURNING version`,
		c.Name, optBytes(c.SecretHash), list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.AppType,
		c.AuthMethod, list(c.GrantTypes), c.AccessTokenFormat, c.RequireConsent, c.UpdatedAt, list(c.Resources),
		c.RequireMFA, c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, c.OfflineSurvivesLogout, c.ID,
		c.Version, list(c.AllowedScopes), c.RequirePAR, c.RequireDPoP, c.JWKS, c.JWKSURI,
		c.IDTokenSignedResponseAlg).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) && c.Version != 0 {
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
	return execOne(ctx, s.pool, "postgres: delete client", `DELETE FROM clients WHERE id = $1`, id)
}
