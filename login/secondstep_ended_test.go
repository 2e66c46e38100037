package login

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/storage"
	"github.com/gatehouse-id/gatehouse/storage/sqlite"
)

// endingStore ends the session being renewed just before the renewal, as a
// sign-out in another tab (or an admin, or the expiry job) would between
// the second step's checks and its write.
type endingStore struct{ storage.Store }

func (s endingStore) RenewSession(ctx context.Context, sess *storage.Session, now time.Time) error {
	if err := s.DeleteSession(ctx, sess.ID); err != nil {
		return err
	}
	return s.Store.RenewSession(ctx, sess, now)
}

// TestSecondStepSessionEndedMeanwhile: the right code for a session that
// ended meanwhile sends the browser to sign in again — not a 500 — and
// completes nothing.
func TestSecondStepSessionEndedMeanwhile(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvWithStore(t, endingStore{st})
	secret, _ := e.enrolTOTPDirect(e.alice)
	c, id := e.passwordStep("alice@example.com", alicePassword)
	code, err := totp.GenerateCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := e.post(c, "/login/factor", url.Values{"csrf": {e.csrfOf(c)}, "authRequestID": {id}, "method": {"totp"}, "code": {code}})
	if res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Location(), "/login?") {
		t.Fatalf("code for an ended session: status %d location %q, want a redirect to sign in\n%s", res.Status, res.Location(), res.Body)
	}
	e.expectNotCompleted("the ended session's request", id)
}
