package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"unicode"
	"unicode/utf8"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// kind is one kind of message: its subject, the label of its button (when it
// carries a link) and its templates, templates/<name>.txt.tmpl and
// templates/<name>.html.tmpl, each defining "content" for the shared layout.
type kind struct {
	name    string
	subject string
	action  string // button label in the HTML part; "" when there is no link

	text *texttemplate.Template
	html *htmltemplate.Template
}

var (
	kindVerifyEmail       = &kind{name: "verify_email", subject: "Verify your email address", action: "Verify email address"}
	kindResetPassword     = &kind{name: "reset_password", subject: "Reset your password", action: "Reset password"}
	kindPasswordChanged   = &kind{name: "password_changed", subject: "Your password was changed"}
	kindConfirmNewEmail   = &kind{name: "confirm_new_email", subject: "Confirm your new email address", action: "Confirm new address"}
	kindEmailChangeNotice = &kind{name: "email_change_notice", subject: "Your email address is being changed"}
	kindAccountDeleted    = &kind{name: "account_deleted", subject: "Your account was deleted"}
	kindFactorAdded       = &kind{name: "factor_added", subject: "A sign-in method was added to your account"}
	kindFactorRemoved     = &kind{name: "factor_removed", subject: "A sign-in method was removed from your account"}
	kindRecoveryCodeUsed  = &kind{name: "recovery_code_used", subject: "A recovery code was used to sign in"}
	kindMFAReset          = &kind{name: "mfa_reset", subject: "Your two-factor sign-in was reset"}
	kindSecondStepLocked  = &kind{name: "second_step_locked", subject: "Wrong codes were entered after your password"}

	kinds = []*kind{
		kindVerifyEmail, kindResetPassword, kindPasswordChanged,
		kindConfirmNewEmail, kindEmailChangeNotice, kindAccountDeleted,
		kindFactorAdded, kindFactorRemoved, kindRecoveryCodeUsed, kindMFAReset,
		kindSecondStepLocked,
	}
)

// The templates are embedded and parsed once, at start-up; a broken template
// is a programming error that the tests catch.
func init() {
	textLayout := texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/layout.txt.tmpl"))
	htmlLayout := htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/layout.html.tmpl"))
	for _, k := range kinds {
		k.text = texttemplate.Must(texttemplate.Must(textLayout.Clone()).ParseFS(templateFS, "templates/"+k.name+".txt.tmpl"))
		k.html = htmltemplate.Must(htmltemplate.Must(htmlLayout.Clone()).ParseFS(templateFS, "templates/"+k.name+".html.tmpl"))
	}
}

// templateData is what the templates see.
type templateData struct {
	ProductName string
	Subject     string
	Action      string
	Name        string // the user's display name; may be empty
	Email       string // the recipient
	Link        string
	NewEmail    string
	Factor      string // the sign-in method added or removed, as a phrase
	When        string // when the event happened, formatted in UTC
	Remaining   int    // unused recovery codes; wrong codes in a row (second_step_locked)
	LockedFor   string // how long the second step is locked, in words
}

// render fills in k's templates.
func (k *kind) render(d templateData) (Message, error) {
	d.Subject = k.subject
	d.Action = k.action
	var text, html bytes.Buffer
	if err := k.text.ExecuteTemplate(&text, "layout", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (text): %w", k.name, err)
	}
	if err := k.html.ExecuteTemplate(&html, "layout", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s (html): %w", k.name, err)
	}
	return Message{To: d.Email, Subject: k.subject, Text: text.String(), HTML: html.String()}, nil
}

const (
	// maxNameRunes caps a display name in a message.
	maxNameRunes = 100
	// maxFactorRunes caps the description of a sign-in method, which wraps
	// a name (a passkey's) in a few words of its own.
	maxFactorRunes = 200
)

// cleanText makes user-supplied text (a display name) safe to place in the
// plain-text part: no control characters (a newline could forge lines of the
// message) nor bidirectional overrides, and at most maxNameRunes runes. The
// HTML part is escaped by html/template as well.
func cleanText(s string) string { return cleanTextN(s, maxNameRunes) }

// cleanTextN is cleanText keeping at most maxRunes runes.
func cleanTextN(s string, maxRunes int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxRunes {
			b.WriteRune('…')
			break
		}
		switch {
		case unicode.IsControl(r):
			r = ' '
		case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069', r == '\u200E', r == '\u200F':
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
