package main

import (
	"testing"
)

// TestDataSurvivesRestart: the embedded store keeps users, clients, keys and
// the generated secret across a restart.
func TestDataSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	var client createdClient
	var kid string
	t.Run("first start", func(t *testing.T) {
		ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_DATA_DIR": dataDir})
		client = ts.createClient("--redirect-uri", redirectA)
		ts.createUser("carol@example.com", testPassword)
		kid = ts.app.keys.Active().ID
	})
	t.Run("second start", func(t *testing.T) {
		ts := startServer(t, "sqlite", map[string]string{"GATEHOUSE_DATA_DIR": dataDir})
		if got := ts.app.keys.Active().ID; got != kid {
			t.Errorf("signing key changed across restart: %s → %s", kid, got)
		}
		r := newRP(t, ts, client)
		ar, code := r.signIn(newBrowser(t, ts.issuer), "carol@example.com", testPassword)
		if tok := r.exchange(ar, code); tok.claims["email"] != "carol@example.com" {
			t.Errorf("claims after restart: %v", tok.claims)
		}
	})
}
