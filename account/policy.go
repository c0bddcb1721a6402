package account

import (
	"bufio"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

func checkDomain(d string) error {
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("domain %q has no dot", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("domain %q has an empty or overlong label", d)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("domain %q has a label starting or ending with a hyphen", d)
		}
		for _, r := range l {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return fmt.Errorf("domain %q contains %q", d, r)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return fmt.Errorf("domain %q is an IP address or ends in a number", d)
	}
	return nil
}

// Password policy defaults and limits.
const (
	// DefaultPasswordMinLength is the shortest new password, in characters.
	DefaultPasswordMinLength = 8
	// DefaultPasswordMaxBytes is the longest new password, in bytes of
	// UTF-8: 64 characters in any script (NIST SP 800-63B asks that at
	// least 64 be allowed), more in ASCII. It bounds what is hashed; a
	// longer password adds nothing to its strength.
	DefaultPasswordMaxBytes = 256
	// MaxPasswordBytes is the largest PasswordMaxBytes a Config may set.
	MaxPasswordBytes = 4096
)

// PasswordPolicy is what a new password must satisfy. The zero value is
// the default policy.
type PasswordPolicy struct {
	// MinLength is the fewest characters (runes, not bytes).
	// Default DefaultPasswordMinLength (8).
	MinLength int
	// MaxBytes is the most bytes. Default DefaultPasswordMaxBytes (256).
	MaxBytes int
}

func (p PasswordPolicy) withDefaults() PasswordPolicy {
	if p.MinLength == 0 {
		p.MinLength = DefaultPasswordMinLength
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = DefaultPasswordMaxBytes
	}
	return p
}

// Check returns nil when password may be set for the account with the
// (normalised or raw) email, and otherwise ErrWeakPassword wrapped with a
// reason fit to show the user. A password is refused when it is shorter
// than MinLength characters, longer than MaxBytes bytes, not valid UTF-8,
// one of the most common passwords (compared case-insensitively), or equal
// (ignoring case) to the email or the part of it before the @.
func (p PasswordPolicy) Check(password, email string) error {
	p = p.withDefaults()
	weak := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrWeakPassword}, args...)...)
	}
	switch {
	case !utf8.ValidString(password):
		return weak("not valid UTF-8")
	case utf8.RuneCountInString(password) < p.MinLength:
		return weak("at least %d characters", p.MinLength)
	case len(password) > p.MaxBytes:
		return weak("at most %d bytes", p.MaxBytes)
	case IsCommonPassword(password):
		return weak("too common")
	}
	if email = strings.ToLower(strings.TrimSpace(email)); email != "" {
		pw := strings.ToLower(password)
		local, _, _ := strings.Cut(email, "@")
		if pw == email || pw == local {
			return weak("must not be your email")
		}
	}
	return nil
}

//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 4096)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			set[strings.ToLower(w)] = struct{}{}
		}
	}
	return set
})

// IsCommonPassword reports whether password, ignoring case, is in the
// list of common passwords shipped with the package (common-passwords.txt:
// the most used passwords of public breach corpora, keyboard walks, number
// runs and their usual variants).
func IsCommonPassword(password string) bool {
	_, ok := commonPasswords()[strings.ToLower(password)]
	return ok
}
