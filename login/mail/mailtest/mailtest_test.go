package mailtest

import (
	"context"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func TestLink(t *testing.T) {
	r := Received{Text: "Open https://id.example.com/a?token=x1 now.\nOr https://id.example.com/verify-email?token=abc_-DEF.\n<https://id.example.com/b?t=1>"}
	for prefix, want := range map[string]string{
		"https://id.example.com/verify-email": "https://id.example.com/verify-email?token=abc_-DEF",
		"https://id.example.com/":             "https://id.example.com/a?token=x1",
		"https://id.example.com/b":            "https://id.example.com/b?t=1",
		"https://other.example/":              "",
	} {
		if got := r.Link(prefix); got != want {
			t.Errorf("Link(%q) = %q, want %q", prefix, got, want)
		}
	}
}

// The server takes mail from any client (here net/smtp), parses single-part
// and base64 bodies, and Wait hands out each message once, in order.
func TestServerWithPlainClient(t *testing.T) {
	srv := NewServer(t, WithAuth("u", "p"))
	send := func(body string) {
		t.Helper()
		auth := smtp.PlainAuth("", "u", "p", "127.0.0.1")
		if err := smtp.SendMail(srv.Addr(), auth, "from@example.com", []string{"Ada@Example.com"}, []byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
			t.Fatal(err)
		}
	}
	send("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nline one=\n continues http://x.test/a=3Db\n")
	send("Subject: two\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\nPHA+aGk8L3A+\n")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := srv.Wait(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if first.Subject != "Grüße" || first.Text != "line one continues http://x.test/a=b\n" || first.AuthUser != "u" || first.From != "from@example.com" {
		t.Errorf("first = %+v", first)
	}
	if first.Link("http://x.test/") != "http://x.test/a=b" {
		t.Errorf("Link = %q", first.Link("http://x.test/"))
	}
	second, err := srv.Wait(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if second.Subject != "two" || second.HTML != "<p>hi</p>" {
		t.Errorf("second = %+v", second)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("Messages() has %d", n)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := srv.Wait(short, "ada@example.com"); err == nil {
		t.Error("third Wait returned a message")
	}
}
