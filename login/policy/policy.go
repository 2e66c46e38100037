// Package policy holds the rules for what users may type into the account
// forms: the password policy (length, character classes, the bundled list of
// common passwords), display names and email addresses. It is pure: no I/O,
// no state but the embedded list.
package policy

import (
	_ "embed"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Defaults of the password policy.
const (
	DefaultMinLength = 8
	// MaxLength caps every password (characters): long enough for any
	// passphrase, short enough that hashing it costs nothing extra.
	MaxLength = 128
	// BcryptMaxBytes is the most bcrypt uses of a password; longer ones would
	// be silently truncated, so they are refused when bcrypt hashes.
	BcryptMaxBytes = 72
)

// Password is a password policy. Build it with Default and adjust.
type Password struct {
	MinLength    int  // characters; values below 1 mean DefaultMinLength
	MaxBytes     int  // 0 ⇒ no byte limit; BcryptMaxBytes when bcrypt hashes
	RequireUpper bool // at least one upper-case letter
	RequireDigit bool // at least one digit
	CheckCommon  bool // refuse passwords on the bundled common list
}

// Default is the policy of docs/design.md: at least 8 characters with an
// upper-case letter and a digit, not on the common list, at most 128
// characters.
func Default() Password {
	return Password{MinLength: DefaultMinLength, RequireUpper: true, RequireDigit: true, CheckCommon: true}
}

// Rule names, for tests and logs.
const (
	RuleTooShort = "too_short"
	RuleTooLong  = "too_long"
	RuleUpper    = "upper"
	RuleDigit    = "digit"
	RuleCommon   = "common"
)

// Violation is one broken rule with the sentence shown to the user.
type Violation struct {
	Rule    string
	Message string
}

func (p Password) minLength() int {
	if p.MinLength < 1 {
		return DefaultMinLength
	}
	return p.MinLength
}

// Check returns every rule pw breaks, in a stable order; nil means the
// password is acceptable. The password is taken as typed: never trimmed.
func (p Password) Check(pw string) []Violation {
	var out []Violation
	n := utf8.RuneCountInString(pw)
	if n < p.minLength() {
		out = append(out, Violation{RuleTooShort, fmt.Sprintf("Password must be at least %d characters.", p.minLength())})
	}
	switch {
	case n > MaxLength:
		out = append(out, Violation{RuleTooLong, fmt.Sprintf("Password must be at most %d characters.", MaxLength)})
	case p.MaxBytes > 0 && len(pw) > p.MaxBytes:
		out = append(out, Violation{RuleTooLong, fmt.Sprintf(
			"Password must be at most %d characters (fewer if it contains accented letters, symbols or emoji).", p.MaxBytes)})
	}
	if p.RequireUpper && strings.IndexFunc(pw, unicode.IsUpper) < 0 {
		out = append(out, Violation{RuleUpper, "Password must contain an upper-case letter."})
	}
	if p.RequireDigit && strings.IndexFunc(pw, unicode.IsDigit) < 0 {
		out = append(out, Violation{RuleDigit, "Password must contain a digit."})
	}
	// The common list matters only for passwords long enough otherwise.
	if p.CheckCommon && n >= p.minLength() && n <= MaxLength && IsCommon(pw) {
		out = append(out, Violation{RuleCommon, "This password is too common. Choose one that is harder to guess."})
	}
	return out
}

// Describe is the one-line hint shown under a new-password field.
func (p Password) Describe() string {
	s := fmt.Sprintf("At least %d characters", p.minLength())
	switch {
	case p.RequireUpper && p.RequireDigit:
		s += ", with an upper-case letter and a digit"
	case p.RequireUpper:
		s += ", with an upper-case letter"
	case p.RequireDigit:
		s += ", with a digit"
	}
	if p.CheckCommon {
		s += "; not a common password"
	}
	return s + "."
}

//go:embed common-passwords.txt
var commonList string

var common = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 30000)
	for w := range strings.SplitSeq(commonList, "\n") {
		if w != "" {
			m[w] = struct{}{}
		}
	}
	return m
})

// CommonCount is the number of passwords on the bundled list.
func CommonCount() int { return len(common()) }

// IsCommon reports whether pw, ignoring case, is on the bundled list of
// common passwords, or is such a password with digits and symbols appended
// ("Password1!", "Dragon2024") — exactly what a rule requiring a digit
// tempts people into.
func IsCommon(pw string) bool {
	m := common()
	lower := strings.ToLower(pw)
	if _, ok := m[lower]; ok {
		return true
	}
	base := strings.TrimRightFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	if utf8.RuneCountInString(base) < 4 || base == lower {
		return false
	}
	_, ok := m[base]
	return ok
}

// Limits of the other fields.
const (
	MinNameLength  = 2
	MaxNameLength  = 100
	MaxEmailLength = 254
)

// NormalizeName trims a display name and folds runs of white space.
func NormalizeName(name string) string {
	return strings.Join(strings.Fields(name), " ")
}

// CheckName returns the message for an unacceptable (already normalised)
// display name, or "".
func CheckName(name string) string {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "Name contains characters that are not allowed."
	case n < MinNameLength:
		return fmt.Sprintf("Name must be at least %d characters.", MinNameLength)
	case n > MaxNameLength:
		return fmt.Sprintf("Name must be at most %d characters.", MaxNameLength)
	}
	return ""
}

// NormalizeEmail returns email as it is stored: trimmed and lower-case.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// CheckEmail returns the message for an unacceptable (already normalised)
// email address, or "". It accepts the plain addr-spec form a person types
// (local@domain.tld), not display names, comments or quoted local parts.
func CheckEmail(email string) string {
	const msg = "Enter a valid email address, like name@example.com."
	if email == "" {
		return "Enter your email address."
	}
	if len(email) > MaxEmailLength || !utf8.ValidString(email) {
		return msg
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return msg
	}
	if strings.ContainsAny(email, " \t\r\n\"(),:;<>[]\\") || strings.IndexFunc(email, invisible) >= 0 {
		return msg
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return msg
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return msg
		}
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return msg
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return msg
	}
	return ""
}

// invisible reports white space, control and format characters (no-break
// space, zero-width space, bidi overrides): net/mail takes them in a UTF-8
// address, where they would let an address pass for another.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
