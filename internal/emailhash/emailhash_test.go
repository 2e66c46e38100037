package emailhash

import (
	"strings"
	"testing"
)

func TestSum(t *testing.T) {
	a := New([32]byte{1})
	s := a.Sum("Alice@Example.com ")
	if len(s) != 16 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Fatalf("pseudonym %q: want 16 hex characters", s)
	}
	if a.Sum("alice@example.com") != s {
		t.Fatal("the same address, differently cased, gave another pseudonym")
	}
	if a.Sum("bob@example.com") == s {
		t.Fatal("two addresses gave the same pseudonym")
	}
	if New([32]byte{2}).Sum("alice@example.com") == s {
		t.Fatal("another key gave the same pseudonym: the key is not used")
	}
}
