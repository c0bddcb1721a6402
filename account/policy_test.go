package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/account"
)

func TestNormalizeEmail(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	for _, tc := range []struct {
		in, want string // want "" for ErrInvalidEmail
	}{
		{"ada@example.com", "ada@example.com"},
		{"  Ada@Example.COM\t\n", "ada@example.com"},
		{"first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"user_name-1@my-domain.io", "user_name-1@my-domain.io"},
		{"x@a.bc", "x@a.bc"},
		{"JÖRG@Exämple.de", "jörg@exämple.de"},
		{"ada@xn--exmple-cua.com", "ada@xn--exmple-cua.com"},
		{long, ""}, // 255 bytes
		{long[:len(long)-5] + ".c", long[:len(long)-5] + ".c"}, // 252 bytes
		{long[:len(long)-1], long[:len(long)-1]},               // 254 bytes
		{"", ""},
		{"   ", ""},
		{"ada", ""},
		{"ada@", ""},
		{"@example.com", ""},
		{"ada@@example.com", ""},
		{"ada@b@example.com", ""},
		{"ada@localhost", ""},
		{"ada@example", ""},
		{"ada@example.", ""},
		{"ada@.example.com", ""},
		{"ada@example..com", ""},
		{"ada@-example.com", ""},
		{"ada@example-.com", ""},
		{"ada@exa_mple.com", ""},
		{"ada@192.168.0.1", ""},
		{"ada@[192.168.0.1]", ""},
		{"ada@example.123", ""},
		{"Ada Lovelace <ada@example.com>", ""},
		{"<ada@example.com>", ""},
		{"ada@example.com (Ada)", ""},
		{`"ada lovelace"@example.com`, ""},
		{`"ada"@example.com`, ""},
		{"ada lovelace@example.com", ""},
		{"ada@exam ple.com", ""},
		{"ada,bob@example.com", ""},
		{"ada;@example.com", ""},
		{".ada@example.com", ""},
		{"ada.@example.com", ""},
		{"a..da@example.com", ""},
		{"ada\x00@example.com", ""},
		{"ada\r\n@example.com", ""},
		{"ada@example.com\x7f", ""},
		{"ada@example.com, bob@example.com", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{"ada@" + strings.Repeat("b", 64) + ".com", ""},
		{"ad\xffa@example.com", ""},
	} {
		got, err := account.NormalizeEmail(tc.in)
		switch {
		case tc.want == "" && !errors.Is(err, account.ErrInvalidEmail):
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", tc.in, got, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	def := account.PasswordPolicy{}
	for _, tc := range []struct {
		p      account.PasswordPolicy
		pw     string
		email  string
		reason string // "" when the password is accepted
	}{
		{def, "plum-kettle-47-ravine", "ada@example.com", ""},
		{def, "8chars!x", "", ""},
		{def, "7chars!", "", "at least 8 characters"},
		{def, "", "", "at least 8 characters"},
		{def, "ééééééé", "", "at least 8 characters"}, // 7 runes, 14 bytes
		{def, "éééééééé", "", ""},                     // 8 runes
		{def, "日本語のパスワード", "", ""},                    // 9 runes
		{def, strings.Repeat("x", 255) + "y", "", ""}, // 256 bytes
		{def, strings.Repeat("x", 256) + "y", "", "at most 256 bytes"},
		{def, strings.Repeat("日", 86), "", "at most 256 bytes"}, // 258 bytes
		{def, "pass\xffword1", "", "not valid UTF-8"},
		{def, "password", "", "too common"},
		{def, "Password1", "", "too common"},
		{def, "PASSWORD123", "", "too common"},
		{def, "qwertyuiop", "", "too common"},
		{def, "iloveyou", "", "too common"},
		{def, "12345678", "", "too common"},
		{def, "1q2w3e4r", "", "too common"},
		{def, "letmein!", "", "too common"},
		{def, "football2024", "", "too common"},
		{def, "ada@example.com", "ada@example.com", "must not be your email"},
		{def, "ADA@Example.com", " ada@example.com ", "must not be your email"},
		{def, "ada.lovelace", "ada.lovelace@example.com", "must not be your email"},
		{def, "Ada.Lovelace", "ada.lovelace@example.com", "must not be your email"},
		{def, "ada.lovelace1", "ada.lovelace@example.com", ""},
		{account.PasswordPolicy{MinLength: 12}, "eleven-char", "", "at least 12 characters"},
		{account.PasswordPolicy{MinLength: 12}, "twelve-chars", "", ""},
		{account.PasswordPolicy{MinLength: 4}, "1234", "", "too common"},
		{account.PasswordPolicy{MinLength: 4}, "zq7!", "", ""},
		{account.PasswordPolicy{MaxBytes: 10}, "eleven-char", "", "at most 10 bytes"},
	} {
		err := tc.p.Check(tc.pw, tc.email)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("Check(%q, %q) = %v, want nil", tc.pw, tc.email, err)
		case tc.reason != "" && (!errors.Is(err, account.ErrWeakPassword) || !strings.HasSuffix(err.Error(), ": "+tc.reason)):
			t.Errorf("Check(%q, %q) = %v, want ErrWeakPassword: %s", tc.pw, tc.email, err, tc.reason)
		case err != nil && len(tc.pw) > 3 && tc.pw != "password" && strings.Contains(err.Error(), tc.pw):
			t.Errorf("Check(%q) error %q contains the password", tc.pw, err)
		}
	}
}

func TestCommonPasswords(t *testing.T) {
	if n := account.CommonPasswordCount(); n < 1000 {
		t.Fatalf("the list has %d passwords, want at least 1000", n)
	}
	for _, pw := range []string{"123456", "password", "qwerty", "iloveyou", "abc123", "monkey", "dragon",
		"letmein", "trustno1", "sunshine", "princess", "football", "baseball", "welcome", "shadow",
		"superman", "michael", "111111", "000000", "qwertyuiop", "1qaz2wsx", "zaq12wsx", "passw0rd",
		"P@ssw0rd", "Password1", "LETMEIN", "Summer2024!", "yankees", "liverpool", "asdfghjkl"} {
		if !account.IsCommonPassword(pw) {
			t.Errorf("IsCommonPassword(%q) = false", pw)
		}
	}
	for _, pw := range []string{"plum-kettle-47-ravine", "", "#", "# common passwords"} {
		if account.IsCommonPassword(pw) {
			t.Errorf("IsCommonPassword(%q) = true", pw)
		}
	}
}
