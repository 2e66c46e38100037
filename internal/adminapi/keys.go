package adminapi

import (
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

// keyJSON is a signing key as the API shows it: never key material.
type keyJSON struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RemoveAfter *time.Time `json:"remove_after,omitempty"`
}

func toKeyJSON(k admin.Key) keyJSON {
	return keyJSON{KID: k.ID, Alg: k.Algorithm, State: k.State, CreatedAt: k.CreatedAt,
		ActivatedAt: k.ActivatedAt, RetiredAt: k.RetiredAt, RemoveAfter: k.RemoveAfter}
}

// listKeys: GET /keys, the active key first, then the next, then the
// retired ones still published. The list is complete.
func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	all, err := a.svc.ListKeys(r.Context(), actorOf(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	items := make([]keyJSON, 0, len(all))
	for _, k := range all {
		items = append(items, toKeyJSON(k))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []keyJSON `json:"items"`
	}{items})
}

// KeyRotationJSON is one algorithm's rotation.
type KeyRotationJSON struct {
	Alg      string `json:"alg"`
	Active   string `json:"active_kid"`
	Previous string `json:"previous_kid"`
}

// rotateKeys: POST /keys/rotate rotates the keys of every algorithm. This
// server signs with the new keys at once; other instances switch within
// their key reload interval. active_kid and previous_kid are the default
// algorithm's; algorithms lists each, the default first.
func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request) {
	rotated, err := a.svc.RotateKeys(r.Context(), actorOf(r))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RotationJSON(rotated))
}

// KeyRotationResponse is the answer to a rotation, from the API and from
// `gatehouse keys rotate --json`: active_kid and previous_kid are the
// default algorithm's.
type KeyRotationResponse struct {
	Active     string            `json:"active_kid"`
	Previous   string            `json:"previous_kid"`
	Algorithms []KeyRotationJSON `json:"algorithms"`
}

// RotationJSON is rotated as the API and the CLI show it.
func RotationJSON(rotated []admin.KeyRotation) KeyRotationResponse {
	out := KeyRotationResponse{Algorithms: make([]KeyRotationJSON, 0, len(rotated))}
	for i, k := range rotated {
		if i == 0 {
			out.Active, out.Previous = k.Active, k.Previous
		}
		out.Algorithms = append(out.Algorithms, KeyRotationJSON{Alg: k.Algorithm, Active: k.Active, Previous: k.Previous})
	}
	return out
}
