package authn

import (
	"slices"
	"testing"
)

func TestACRFor(t *testing.T) {
	for _, tc := range []struct {
		amr  []string
		want string
	}{
		{nil, ACRSingleFactor},
		{[]string{"pwd"}, ACRSingleFactor},
		{[]string{"fed"}, ACRSingleFactor},
		{[]string{"otp"}, ACRSingleFactor},
		{[]string{"hwk"}, ACRSingleFactor},
		{[]string{"user"}, ACRSingleFactor},
		{[]string{"pwd", "user"}, ACRSingleFactor},
		{[]string{"otp", "hwk"}, ACRSingleFactor}, // two things you have
		{[]string{"pwd", "otp"}, ACRMFA},
		{[]string{"pwd", "otp", "mfa"}, ACRMFA},
		{[]string{"pwd", "hwk"}, ACRMFA},
		{[]string{"pwd", "swk"}, ACRMFA},
		{[]string{"fed", "otp"}, ACRMFA},
		{[]string{"fed", "mfa"}, ACRMFA},
		{[]string{"mfa"}, ACRMFA},
		{[]string{"hwk", "user"}, ACRPhishingResistant},
		{[]string{"swk", "user"}, ACRPhishingResistant},
		{[]string{"pwd", "hwk", "user", "mfa"}, ACRPhishingResistant},
		{[]string{"unknown", "pwd"}, ACRSingleFactor},
	} {
		if got := ACRFor(tc.amr); got != tc.want {
			t.Errorf("ACRFor(%v) = %s, want %s", tc.amr, got, tc.want)
		}
	}
}

func TestSatisfies(t *testing.T) {
	const (
		sf = ACRSingleFactor
		mf = ACRMFA
		pr = ACRPhishingResistant
	)
	for _, tc := range []struct {
		have   string
		wanted []string
		want   bool
	}{
		{sf, nil, true},
		{sf, []string{}, true},
		{sf, []string{"urn:other:acr", "0"}, true}, // nothing known: nothing asked
		{sf, []string{sf}, true},
		{sf, []string{mf}, false},
		{sf, []string{pr}, false},
		{sf, []string{"urn:other:acr", mf}, false},
		{mf, []string{sf}, true},
		{mf, []string{mf}, true},
		{mf, []string{pr}, false},
		{mf, []string{pr, mf}, true}, // a preference list: the second is met
		{mf, []string{pr, "urn:other"}, false},
		{pr, []string{pr}, true},
		{pr, []string{mf}, true},
		{pr, []string{sf}, true},
		{"", []string{sf}, false},
		{"urn:other", []string{mf}, false},
		{"", nil, true},
	} {
		if got := Satisfies(tc.have, tc.wanted); got != tc.want {
			t.Errorf("Satisfies(%q, %q) = %v, want %v", tc.have, tc.wanted, got, tc.want)
		}
	}
	if vals := ACRValues(); !slices.Equal(vals, []string{sf, mf, pr}) {
		t.Errorf("ACRValues() = %v", vals)
	}
}

func TestAddFactor(t *testing.T) {
	for _, tc := range []struct {
		amr, add, want []string
	}{
		{nil, []string{"pwd"}, []string{"pwd"}},
		{[]string{"pwd"}, []string{"pwd"}, []string{"pwd"}},
		{[]string{"pwd"}, []string{"otp"}, []string{"pwd", "otp", "mfa"}},
		{[]string{"pwd"}, []string{"hwk"}, []string{"pwd", "hwk", "mfa"}},
		{[]string{"pwd"}, []string{"swk", "user"}, []string{"pwd", "swk", "user", "mfa"}},
		{[]string{"fed"}, []string{"otp"}, []string{"fed", "otp", "mfa"}},
		{[]string{"pwd", "otp", "mfa"}, []string{"otp"}, []string{"pwd", "otp", "mfa"}},
		{[]string{"pwd", "otp", "mfa"}, []string{"hwk"}, []string{"pwd", "otp", "mfa", "hwk"}},
		{nil, []string{"hwk", "user"}, []string{"hwk", "user", "mfa"}}, // a verified passkey is two factors
		{nil, []string{"hwk"}, []string{"hwk"}},
		{[]string{"pwd"}, []string{"user"}, []string{"pwd", "user"}}, // user alone is not a factor
		{[]string{"otp"}, []string{"hwk"}, []string{"otp", "hwk"}},   // same kind
		{nil, []string{"", "pwd", "pwd"}, []string{"pwd"}},
		{[]string{"pwd"}, nil, []string{"pwd"}},
	} {
		in := slices.Clone(tc.amr)
		got := AddFactor(tc.amr, tc.add...)
		if !slices.Equal(got, tc.want) {
			t.Errorf("AddFactor(%v, %v) = %v, want %v", tc.amr, tc.add, got, tc.want)
		}
		if !slices.Equal(tc.amr, in) {
			t.Errorf("AddFactor modified its input: %v → %v", in, tc.amr)
		}
	}
	// It must not write into spare capacity of the caller's slice either.
	base := make([]string, 1, 4)
	base[0] = "pwd"
	a := AddFactor(base, "otp")
	b := AddFactor(base, "hwk")
	if a[1] != "otp" || b[1] != "hwk" {
		t.Errorf("results share storage: %v %v", a, b)
	}
}

// Values an upstream reported about its own sign-in are shown in the amr
// claim but never count as a factor proved to Gatehouse.
func TestUpstreamAMR(t *testing.T) {
	sess := []string{AMRFederated, Upstream("pwd"), Upstream("otp"), Upstream("mfa")}
	if got := ACRFor(AddFactor(sess)); got != ACRSingleFactor {
		t.Errorf("fed with upstream pwd+otp+mfa: %s, want single-factor", got)
	}
	if got := ClaimAMR(sess); !slices.Equal(got, []string{"fed", "pwd", "otp", "mfa"}) {
		t.Errorf("ClaimAMR = %v", got)
	}
	withOTP := AddFactor(sess, AMROTP)
	if got := ACRFor(withOTP); got != ACRMFA {
		t.Errorf("fed + Gatehouse otp: %s, want mfa", got)
	}
	if got := ClaimAMR(withOTP); !slices.Equal(got, []string{"fed", "pwd", "otp", "mfa"}) {
		t.Errorf("ClaimAMR = %v (each value once)", got)
	}
	if ClaimAMR(nil) != nil {
		t.Error("ClaimAMR(nil) is not nil")
	}
}
