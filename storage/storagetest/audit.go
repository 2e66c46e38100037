package storagetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/storage"
)

func auditTests() []namedTest {
	return []namedTest{
		{"AppendAndListNewestFirst", testAuditAppendList},
		{"FilterBySubjectAndSince", testAuditFilter},
		{"LimitAndCursorPaging", testAuditPaging},
		{"UnknownCursor", testAuditUnknownCursor},
		{"DeleteBefore", testAuditDeleteBefore},
		{"ClientTextIsCleaned", testAuditCleansClientText},
	}
}

func newAuditEvent(action, subject string, t time.Time) *storage.AuditEvent {
	return &storage.AuditEvent{
		Time: t, Action: action, Actor: subject, Subject: subject,
		IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (test)", ClientID: "web",
	}
}

func appendAudit(t *testing.T, s storage.Store, events ...*storage.AuditEvent) {
	t.Helper()
	for _, e := range events {
		mustNot(t, "append audit "+e.Action, s.AppendAudit(context.Background(), e))
	}
}

func listAudit(t *testing.T, s storage.Store, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	got, err := s.ListAudit(context.Background(), f)
	mustNot(t, fmt.Sprintf("list audit %+v", f), err)
	return got
}

// auditIDs are the IDs of events, in order, for compact comparisons.
func auditIDs(events []storage.AuditEvent) string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return strings.Join(ids, ",")
}

// testAuditAppendList: every field round-trips, the store assigns an ID when
// the caller gave none, and the list is newest first whatever the order of
// insertion.
func testAuditAppendList(t *testing.T, s storage.Store) {
	middle := newAuditEvent(storage.AuditSignIn, "alice", at(time.Minute))
	middle.Detail = map[string]string{"session_id": "s-1", "note": "ünïcode ✓"}
	newest := newAuditEvent(storage.AuditPasswordChanged, "alice", at(2*time.Minute))
	oldest := newAuditEvent(storage.AuditUserCreated, "alice", at(0))
	oldest.ID, oldest.Actor, oldest.IP, oldest.UserAgent, oldest.ClientID = "given-id", storage.ActorCLI, "", "", ""
	appendAudit(t, s, middle, newest, oldest)
	if middle.ID == "" || newest.ID == "" || middle.ID == newest.ID {
		t.Fatalf("AppendAudit assigned IDs %q and %q, want two distinct ones", middle.ID, newest.ID)
	}
	if oldest.ID != "given-id" {
		t.Errorf("AppendAudit replaced the caller's ID with %q", oldest.ID)
	}
	got := listAudit(t, s, storage.AuditFilter{})
	if len(got) != 3 {
		t.Fatalf("ListAudit returned %d events, want 3", len(got))
	}
	for i, want := range []*storage.AuditEvent{newest, middle, oldest} {
		assertEqual(t, fmt.Sprintf("event %d", i), &got[i], want)
	}
}

func testAuditFilter(t *testing.T, s storage.Store) {
	a1 := newAuditEvent(storage.AuditSignIn, "alice", at(0))
	b1 := newAuditEvent(storage.AuditSignIn, "bob", at(time.Minute))
	a2 := newAuditEvent(storage.AuditSignInFailed, "alice", at(2*time.Minute))
	a3 := newAuditEvent(storage.AuditLockout, "alice", at(3*time.Minute))
	appendAudit(t, s, a1, b1, a2, a3)

	check := func(what string, f storage.AuditFilter, want ...*storage.AuditEvent) {
		t.Helper()
		ids := make([]string, len(want))
		for i, e := range want {
			ids[i] = e.ID
		}
		if got := auditIDs(listAudit(t, s, f)); got != strings.Join(ids, ",") {
			t.Errorf("%s: got [%s], want [%s]", what, got, strings.Join(ids, ","))
		}
	}
	check("subject alice", storage.AuditFilter{Subjects: []string{"alice"}}, a3, a2, a1)
	check("subject bob", storage.AuditFilter{Subjects: []string{"bob"}}, b1)
	check("subject nobody", storage.AuditFilter{Subjects: []string{"nobody"}})
	check("either subject", storage.AuditFilter{Subjects: []string{"bob", "alice"}}, a3, a2, b1, a1)
	// Since is inclusive, at the contract's precision.
	check("since", storage.AuditFilter{Since: at(time.Minute)}, a3, a2, b1)
	check("subject and since", storage.AuditFilter{Subjects: []string{"alice"}, Since: at(time.Minute)}, a3, a2)
	check("since after everything", storage.AuditFilter{Since: at(time.Hour)})
	check("action", storage.AuditFilter{Actions: []string{storage.AuditSignIn}}, b1, a1)
	check("either action", storage.AuditFilter{Actions: []string{storage.AuditLockout, storage.AuditSignInFailed}}, a3, a2)
	check("action and subject", storage.AuditFilter{Actions: []string{storage.AuditSignIn}, Subjects: []string{"bob"}}, b1)
	check("unknown action", storage.AuditFilter{Actions: []string{"no_such_action"}})
	check("actor", storage.AuditFilter{Actor: "bob"}, b1)
	check("actor and action", storage.AuditFilter{Actor: "alice", Actions: []string{storage.AuditSignInFailed}}, a2)
	check("unknown actor", storage.AuditFilter{Actor: "nobody"})
}

// testAuditPaging pages through events two at a time, with the cursor, and
// gets each exactly once in order; events at the same instant are ordered by
// ID, so the cursor never skips or repeats one of them.
func testAuditPaging(t *testing.T, s storage.Store) {
	var all []*storage.AuditEvent
	for i := range 7 {
		// Pairs of events share an instant.
		e := newAuditEvent(storage.AuditSignIn, "alice", at(time.Duration(i/2)*time.Second))
		e.ID = fmt.Sprintf("ev-%d", i)
		all = append(all, e)
	}
	appendAudit(t, s, all...)
	want := "ev-6,ev-5,ev-4,ev-3,ev-2,ev-1,ev-0"
	if got := auditIDs(listAudit(t, s, storage.AuditFilter{})); got != want {
		t.Fatalf("unpaged: got [%s], want [%s]", got, want)
	}
	for _, subject := range []string{"", "alice"} {
		var seen []string
		f := storage.AuditFilter{Limit: 2}
		if subject != "" {
			f.Subjects = []string{subject}
		}
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatalf("subject %q: paging does not end", subject)
			}
			got := listAudit(t, s, f)
			if len(got) > 2 {
				t.Fatalf("subject %q: page of %d events with Limit 2", subject, len(got))
			}
			if len(got) == 0 {
				break
			}
			seen = append(seen, auditIDs(got))
			f.Before = got[len(got)-1].ID
		}
		if got := strings.Join(seen, ","); got != want {
			t.Errorf("subject %q: paged: got [%s], want [%s]", subject, got, want)
		}
	}
	// The cursor combines with Since.
	got := listAudit(t, s, storage.AuditFilter{Since: at(time.Second), Before: "ev-4"})
	if ids := auditIDs(got); ids != "ev-3,ev-2" {
		t.Errorf("since + before: got [%s], want [ev-3,ev-2]", ids)
	}
}

func testAuditUnknownCursor(t *testing.T, s storage.Store) {
	appendAudit(t, s, newAuditEvent(storage.AuditSignIn, "alice", at(0)))
	_, err := s.ListAudit(context.Background(), storage.AuditFilter{Before: "no-such-event"})
	assertErrorIs(t, "ListAudit with an unknown cursor", err, storage.ErrNotFound)
}

// testAuditDeleteBefore: events strictly older than the cut-off go, the rest
// stay; events survive the deletion of the user they concern.
func testAuditDeleteBefore(t *testing.T, s storage.Store) {
	ctx := context.Background()
	sd := seedStore(t, s)
	old1 := newAuditEvent(storage.AuditSignIn, sd.alice.ID, at(-48*time.Hour))
	old2 := newAuditEvent(storage.AuditSignInFailed, "email-hash", at(-25*time.Hour))
	edge := newAuditEvent(storage.AuditLockout, sd.alice.ID, at(-24*time.Hour))
	recent := newAuditEvent(storage.AuditAccountDeleted, sd.alice.ID, at(0))
	appendAudit(t, s, old1, old2, edge, recent)
	mustNot(t, "delete user", s.DeleteUser(ctx, sd.alice.ID))

	n, err := s.DeleteAuditBefore(ctx, at(-24*time.Hour))
	mustNot(t, "delete audit before", err)
	if n != 2 {
		t.Errorf("DeleteAuditBefore removed %d events, want 2", n)
	}
	if got, want := auditIDs(listAudit(t, s, storage.AuditFilter{})), recent.ID+","+edge.ID; got != want {
		t.Errorf("after retention: got [%s], want [%s]", got, want)
	}
	if n, err := s.DeleteAuditBefore(ctx, at(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("second DeleteAuditBefore = %d, %v; want 0, nil", n, err)
	}
}

// Whatever a client sent — a User-Agent with invalid UTF-8 or control
// characters, an over-long one — is stored cleaned, never refused: a crafted
// header must not keep an attacker's events out of the trail.
func testAuditCleansClientText(t *testing.T, s storage.Store) {
	e := newAuditEvent(storage.AuditSignInFailed, "email:0123456789abcdef", at(0))
	e.UserAgent = "Mozilla\xff\xfe\r\nX-Injected: 1" + strings.Repeat("a", 600)
	e.Detail = map[string]string{"reason\xff": "invalid\x00credentials"}
	appendAudit(t, s, e)
	got := listAudit(t, s, storage.AuditFilter{})
	if len(got) != 1 {
		t.Fatalf("ListAudit returned %d events, want 1", len(got))
	}
	ua := got[0].UserAgent
	if !utf8.ValidString(ua) || strings.ContainsAny(ua, "\r\n") || len(ua) > storage.MaxAuditUserAgent || !strings.HasPrefix(ua, "Mozilla") {
		t.Errorf("stored user agent %q: want valid UTF-8, no control characters, at most %d bytes", ua, storage.MaxAuditUserAgent)
	}
	for k, v := range got[0].Detail {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			t.Errorf("stored detail %q=%q is not clean text", k, v)
		}
	}
}
