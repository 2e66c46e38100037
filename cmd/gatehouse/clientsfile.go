package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/storage"
)

// clientsFile is the declarative clients file (GATEHOUSE_CLIENTS_FILE):
//
//	{"clients": [{"id": "app", "name": "App", "secret": "…",
//	              "redirect_uris": ["https://app.example/cb"]},
//	             {"id": "svc", "auth_method": "private_key_jwt",
//	              "jwks_uri": "https://svc.example/jwks.json",
//	              "grant_types": ["client_credentials"]}]}
//
// Each client is created or updated to match at start. Clients not in the
// file are left alone.
type clientsFile struct {
	Clients []fileClient `json:"clients"`
}

// fileClient is a client in the file: what any client has (validated by
// the admin service's rules) and its secret, which only the file may give.
type fileClient struct {
	admin.ClientSpec
	// The secret in clear, or its SHA-256 in hex.
	Secret       string `json:"secret"`
	SecretSHA256 string `json:"secret_sha256"`
}

func applyClientsFile(ctx context.Context, st storage.Store, path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	clients, err := parseClientsFile(b, now)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range clients {
		existing, err := st.GetClient(ctx, c.ID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if err := st.CreateClient(ctx, c); err != nil {
				return fmt.Errorf("create client %q: %w", c.ID, err)
			}
		case err != nil:
			return fmt.Errorf("load client %q: %w", c.ID, err)
		default:
			c.CreatedAt = existing.CreatedAt
			if err := st.UpdateClient(ctx, c); err != nil {
				return fmt.Errorf("update client %q: %w", c.ID, err)
			}
		}
	}
	return nil
}

// parseClientsFile decodes and validates a whole clients file before anything
// is written, so a mistake in one client leaves every client as it was.
func parseClientsFile(b []byte, now time.Time) ([]*storage.Client, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f clientsFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	// Decode stops after the first value: a second one would be ignored.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	var out []*storage.Client
	seen := map[string]bool{}
	for i, spec := range f.Clients {
		if spec.ID == "" {
			return nil, fmt.Errorf("client %d: id is required", i+1)
		}
		if seen[spec.ID] {
			return nil, fmt.Errorf("client %q appears twice", spec.ID)
		}
		seen[spec.ID] = true
		c, err := spec.Client(now)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", spec.ID, err)
		}
		switch {
		case c.AuthMethod == storage.AuthMethodNone:
			if spec.Secret != "" || spec.SecretSHA256 != "" {
				return nil, fmt.Errorf("client %q: a public client has no secret", spec.ID)
			}
		case c.AuthMethod == storage.AuthMethodPrivateKeyJWT:
			// One method per client: keys (jwks or jwks_uri), never a secret.
			if spec.Secret != "" || spec.SecretSHA256 != "" {
				return nil, fmt.Errorf("client %q: a private_key_jwt client authenticates with its keys and has no secret", spec.ID)
			}
		case spec.Secret != "" && spec.SecretSHA256 != "":
			return nil, fmt.Errorf("client %q: give secret or secret_sha256, not both", spec.ID)
		case spec.Secret != "":
			if len(spec.Secret) < 16 {
				return nil, fmt.Errorf("client %q: secret must be at least 16 characters", spec.ID)
			}
			c.SecretHash = admin.HashClientSecret(spec.Secret)
		case spec.SecretSHA256 != "":
			h, err := hex.DecodeString(spec.SecretSHA256)
			if err != nil || len(h) != 32 {
				return nil, fmt.Errorf("client %q: secret_sha256 must be 64 hex digits", spec.ID)
			}
			c.SecretHash = h
		default:
			return nil, fmt.Errorf("client %q: a confidential client needs secret or secret_sha256", spec.ID)
		}
		out = append(out, c)
	}
	return out, nil
}
