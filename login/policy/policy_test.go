package policy

import (
	"slices"
	"strings"
	"testing"
)

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	for pw, want := range map[string][]string{
		"Correct-Horse-9":         nil,
		"Zebra-Quartz-77":         nil,
		"Ünïcode-Päss-1":          nil,
		"Ab1":                     {RuleTooShort},
		"":                        {RuleTooShort, RuleUpper, RuleDigit},
		"lowercase-only-1":        {RuleUpper},
		"NoDigitsAtAll":           {RuleDigit},
		"Password1":               {RuleCommon},
		"PASSWORD123":             {RuleCommon},
		"Dragon2024!":             {RuleCommon}, // common word + digits and symbols
		"Iloveyou1":               {RuleCommon},
		"Qwertyuiop1":             {RuleCommon},
		"  Spaces-Are-Kept-1  ":   nil,
		strings.Repeat("Aa1", 42): nil, // 126 characters
		strings.Repeat("Aa1", 43): {RuleTooLong},
		"ÄÖÜ" + strings.Repeat("é", 120) + "12345": nil, // 128 characters, more bytes
	} {
		if got := rules(p.Check(pw)); !slices.Equal(got, want) {
			t.Errorf("Check(%q) = %v, want %v", pw, got, want)
		}
	}
}

func TestMessages(t *testing.T) {
	p := Default()
	want := map[string]string{
		RuleTooShort: "Password must be at least 8 characters.",
		RuleUpper:    "Password must contain an upper-case letter.",
		RuleDigit:    "Password must contain a digit.",
		RuleCommon:   "This password is too common. Choose one that is harder to guess.",
	}
	got := map[string]string{}
	for _, pw := range []string{"", "Password1"} {
		for _, v := range p.Check(pw) {
			got[v.Rule] = v.Message
		}
	}
	for r, m := range want {
		if got[r] != m {
			t.Errorf("%s: %q, want %q", r, got[r], m)
		}
	}
	long := p.Check(strings.Repeat("Aa1", 50))
	if len(long) != 1 || long[0].Message != "Password must be at most 128 characters." {
		t.Errorf("too long: %+v", long)
	}
}

func TestBcryptByteLimit(t *testing.T) {
	p := Default()
	p.MaxBytes = BcryptMaxBytes
	if v := p.Check(strings.Repeat("Aa1", 24)); v != nil { // 72 bytes
		t.Errorf("72 bytes: %+v", v)
	}
	v := p.Check(strings.Repeat("Aa1", 24) + "x")
	if !slices.Equal(rules(v), []string{RuleTooLong}) || !strings.Contains(v[0].Message, "at most 72 characters") {
		t.Errorf("73 bytes: %+v", v)
	}
	// 30 characters but 90 bytes.
	if got := rules(p.Check("A1" + strings.Repeat("€", 28))); !slices.Equal(got, []string{RuleTooLong}) {
		t.Errorf("multi-byte: %v", got)
	}
}

func TestConfigurable(t *testing.T) {
	p := Password{MinLength: 12}
	if got := rules(p.Check("password")); !slices.Equal(got, []string{RuleTooShort}) {
		t.Errorf("relaxed policy: %v", got)
	}
	if p.Check("passwordpassword") != nil {
		t.Error("no class or common rules configured, yet refused")
	}
	if v := p.Check("short"); v[0].Message != "Password must be at least 12 characters." {
		t.Errorf("%+v", v)
	}
	if (Password{}).minLength() != DefaultMinLength {
		t.Error("zero MinLength")
	}
}

func TestDescribe(t *testing.T) {
	for p, want := range map[Password]string{
		Default():                          "At least 8 characters, with an upper-case letter and a digit; not a common password.",
		{MinLength: 10}:                    "At least 10 characters.",
		{RequireDigit: true}:               "At least 8 characters, with a digit.",
		{RequireUpper: true, MinLength: 9}: "At least 9 characters, with an upper-case letter.",
	} {
		if got := p.Describe(); got != want {
			t.Errorf("%+v: %q, want %q", p, got, want)
		}
	}
}

func TestCommonList(t *testing.T) {
	if n := CommonCount(); n < 10000 {
		t.Fatalf("only %d common passwords", n)
	}
	long := 0
	for w := range common() {
		if len(w) >= DefaultMinLength {
			long++
		}
	}
	if long < 10000 {
		t.Errorf("only %d common passwords of 8 or more characters", long)
	}
	for _, pw := range []string{"123456", "password", "PassWord", "trustno1", "letmein", "sunshine1", "baseball"} {
		if !IsCommon(pw) {
			t.Errorf("%q not common", pw)
		}
	}
	for _, pw := range []string{"Correct-Horse-9", "Zebra-Quartz-77", "x7#Lm2$Qp", "abc!", ""} {
		if IsCommon(pw) {
			t.Errorf("%q common", pw)
		}
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"  Ada   Lovelace ": "Ada Lovelace",
		"\tBo\n":            "Bo",
		"":                  "",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q", in, got)
		}
	}
	for in, want := range map[string]string{
		"Bo":                     "",
		"李雷":                     "",
		"A":                      "Name must be at least 2 characters.",
		"":                       "Name must be at least 2 characters.",
		strings.Repeat("a", 101): "Name must be at most 100 characters.",
		"Bad\x00Name":            "Name contains characters that are not allowed.",
		"Bad\xffName":            "Name contains characters that are not allowed.",
	} {
		if got := CheckName(in); got != want {
			t.Errorf("CheckName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEmail(t *testing.T) {
	if got := NormalizeEmail("  Alice@Example.COM\n"); got != "alice@example.com" {
		t.Errorf("NormalizeEmail: %q", got)
	}
	for _, ok := range []string{"alice@example.com", "a.b+tag@sub.example.co.uk", "x_y-z@ex-ample.org", "élodie@exemple.fr"} {
		if m := CheckEmail(ok); m != "" {
			t.Errorf("CheckEmail(%q) = %q", ok, m)
		}
	}
	if CheckEmail("") != "Enter your email address." {
		t.Error("empty email")
	}
	for _, bad := range []string{"alice", "alice@", "@example.com", "alice@example", "alice@@example.com",
		"alice@exa mple.com", "Alice <alice@example.com>", "alice@example..com", "alice@-example.com",
		".alice@example.com", "al..ice@example.com", "alice@example.com\x00", "\"a b\"@example.com",
		strings.Repeat("a", 65) + "@example.com", "a@" + strings.Repeat("b", 250) + ".com", "a@b.c\xff",
		"ali\u200bce@example.com", "alice\u00a0@example.com", "alice\u202e@example.com"} { // invisible: pass for alice@example.com
		if CheckEmail(bad) != "Enter a valid email address, like name@example.com." {
			t.Errorf("CheckEmail(%q) accepted", bad)
		}
	}
}
