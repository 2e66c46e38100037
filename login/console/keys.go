package console

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/admin"
)

type keysPage struct {
	base
	Keys []admin.Key
}

func (c *Console) getKeys(w http.ResponseWriter, r *http.Request) {
	c.showKeys(w, r, http.StatusOK, "")
}

func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, status int, notice string) {
	list, err := c.svc.ListKeys(r.Context(), current(r).actor)
	if err != nil {
		c.pages.InternalError(w, r, "console: list keys", err)
		return
	}
	if notice == "" && r.URL.Query().Get("done") == "rotated" {
		notice = "The keys were rotated: the next key signs from now on, and the old one stays published until tokens it signed have expired."
	}
	p := &keysPage{base: base{Nav: "keys", Notice: notice}, Keys: list}
	c.render(w, r, status, "Signing keys", "keys", &p.base, p)
}

var rotateKeys = destructive{Title: "Rotate the signing keys?", Button: "Rotate keys",
	Message: "In every algorithm, the published next key starts signing tokens; the current one is retired but stays published until the tokens it signed have expired, so apps that cache the key set keep working. Rotate at once when a key may have leaked."}

func (c *Console) getKeysConfirm(w http.ResponseWriter, r *http.Request) {
	p := &confirmPage{base: base{Nav: "keys"}, destructive: rotateKeys, Action: r.URL.Path, Subject: "the signing keys", Back: Prefix + "/keys"}
	c.render(w, r, http.StatusOK, rotateKeys.Title, "confirm", &p.base, p)
}

func (c *Console) postKeysRotate(w http.ResponseWriter, r *http.Request) {
	if !confirmed(w, r) {
		return
	}
	if _, err := c.svc.RotateKeys(r.Context(), current(r).actor); err != nil {
		c.pages.InternalError(w, r, "console: rotate keys", err)
		return
	}
	done(w, r, Prefix+"/keys", "rotated")
}
