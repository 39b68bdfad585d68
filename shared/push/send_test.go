package push

import "testing"

func TestCredentialFingerprint(t *testing.T) {
	a := CredentialFingerprint("secret-a")
	if got := CredentialFingerprint("secret-a"); got != a {
		t.Errorf("same secret: %s then %s, want equal", a, got)
	}
	if got := CredentialFingerprint("secret-b"); got == a {
		t.Errorf("another secret gave the same fingerprint %s", got)
	}
	// Parts are delimited, so moving a character between them changes it.
	if CredentialFingerprint("ab", "c") == CredentialFingerprint("a", "bc") {
		t.Error(`("ab","c") and ("a","bc") share a fingerprint`)
	}
	if len(a) != 16 {
		t.Errorf("fingerprint %q has %d chars, want 16", a, len(a))
	}
}
