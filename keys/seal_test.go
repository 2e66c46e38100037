package keys

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var testSecret = []byte("test-secret-0123456789-abcdefghij")

func mustSealer(t *testing.T, secret []byte) *sealer {
	t.Helper()
	s, err := newSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := mustSealer(t, testSecret)
	plain := []byte("private key bytes")
	a, err := s.seal("kid1", plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.seal("kid1", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical: nonce not random")
	}
	if bytes.Contains(a, plain) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := s.open("kid1", a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("open = %q, want %q", got, plain)
	}
}

func TestOpenWrongSecret(t *testing.T) {
	sealed, err := mustSealer(t, testSecret).seal("kid1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = mustSealer(t, []byte("some-other-secret-0123456789")).open("kid1", sealed)
	if !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("err = %v, want ErrWrongSecret", err)
	}
	if want := "cannot decrypt signing key kid1: wrong GATEHOUSE_SECRET?"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

func TestOpenBindsKid(t *testing.T) {
	// A ciphertext moved to another key's row must not decrypt.
	s := mustSealer(t, testSecret)
	sealed, err := s.seal("kid1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.open("kid2", sealed); err == nil {
		t.Fatal("opened under a different kid")
	}
}

func TestOpenTruncated(t *testing.T) {
	_, err := mustSealer(t, testSecret).open("kid1", []byte{1, 2, 3})
	if err == nil || !strings.Contains(err.Error(), "kid1") {
		t.Fatalf("err = %v, want an error naming the kid", err)
	}
}
