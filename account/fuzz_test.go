package account

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// cheapParams keep argon2 fast enough to fuzz: the fuzz targets check
// parsing and the round trip, not the cost.
var cheapParams = HashParams{Memory: 64, Time: 1, Parallelism: 1}

// Work up to this much is done for real; anything costlier is checked
// for its parameters and verified with a cancelled context, which must
// refuse before hashing.
const maxFuzzMemory, maxFuzzTime = 1024, 2

// FuzzPHC hands Hasher.Verify arbitrary stored hashes, as a corrupt or
// tampered database would. Properties: Verify never panics; a hash that
// does not parse is ErrInvalidHash without any argon2 work; a hash that
// parses is canonical (it formats back to the same text), at most 256
// bytes, and its parameters are within the limits, so one verification
// never asks for more than MaxHashMemory KiB, MaxHashTime passes and
// MaxHashParallelism lanes; a hash made by Hash verifies its password and
// no other.
func FuzzPHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U", "password")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")  // 4 TiB
	f.Add("$argon2id$v=19$m=64,t=4294967295,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x") // forever
	f.Add("$argon2id$v=19$m=2048,t=1,p=255$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")      // 255 lanes
	f.Add("$argon2id$v=19$m=64,t=1,p=257$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")        // wraps to 1 in a uint8
	f.Add("$argon2id$v=19$m=064,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")         // leading zero
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5aw", "x")         // padding
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdH\nNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")        // line break
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")           // argon2i
	f.Add("$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")          // old version
	f.Add("$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")          // order
	f.Add("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "x")            // bcrypt
	f.Add("", "")
	f.Fuzz(func(t *testing.T, phc, password string) {
		var hashes atomic.Int64
		h, err := NewHasher(cheapParams, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.testHook = func(start bool) {
			if start {
				hashes.Add(1)
			}
		}
		d, perr := parsePHC(phc)
		if perr != nil {
			if !errors.Is(perr, ErrInvalidHash) {
				t.Fatalf("parsePHC(%q) = %v, not ErrInvalidHash", phc, perr)
			}
			if ok, _, err := h.Verify(t.Context(), phc, password); ok || !errors.Is(err, ErrInvalidHash) || hashes.Load() != 0 {
				t.Fatalf("Verify(%q) = %v, %v after %d hashes; want ErrInvalidHash without hashing", phc, ok, err, hashes.Load())
			}
		} else {
			p := d.params
			switch {
			case len(phc) > maxPHCLen:
				t.Fatalf("parsed a %d-byte hash", len(phc))
			case p.Memory > MaxHashMemory || p.Time > MaxHashTime || p.Parallelism > MaxHashParallelism ||
				p.Memory < 8*uint32(p.Parallelism) || p.Time < 1 || p.Parallelism < 1:
				t.Fatalf("parsePHC(%q) accepted parameters %v", phc, p)
			case len(d.salt) < minSaltLen || len(d.salt) > maxSaltLen || len(d.key) < minKeyLen || len(d.key) > maxKeyLen:
				t.Fatalf("parsePHC(%q): salt %d bytes, key %d bytes", phc, len(d.salt), len(d.key))
			case formatPHC(p, d.salt, d.key) != phc:
				t.Fatalf("parsePHC(%q) accepted a hash that formats as %q", phc, formatPHC(p, d.salt, d.key))
			}
			if p.Memory <= maxFuzzMemory && p.Time <= maxFuzzTime {
				if _, _, err := h.Verify(t.Context(), phc, password); err != nil || hashes.Load() != 1 {
					t.Fatalf("Verify(%q) = %v after %d hashes", phc, err, hashes.Load())
				}
			} else {
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				if _, _, err := h.Verify(ctx, phc, password); !errors.Is(err, context.Canceled) || hashes.Load() != 0 {
					t.Fatalf("Verify(%q) with a cancelled context = %v after %d hashes", phc, err, hashes.Load())
				}
			}
		}

		// Round trip.
		hashes.Store(0)
		made, err := h.Hash(t.Context(), password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parsePHC(made); err != nil {
			t.Fatalf("Hash(%q) = %q, which does not parse: %v", password, made, err)
		}
		if ok, rehash, err := h.Verify(t.Context(), made, password); !ok || rehash || err != nil {
			t.Fatalf("Verify(Hash(%q)) = %v, %v, %v", password, ok, rehash, err)
		}
		if ok, _, err := h.Verify(t.Context(), made, password+"\x00"); ok || err != nil {
			t.Fatalf("Verify(Hash(%q), another password) = %v, %v", password, ok, err)
		}
	})
}

// FuzzNormalizeEmail: the normalised form of an email is what accounts are
// stored and found under, so it must be a fixed point. Properties: an
// accepted address normalises to itself (idempotence), is lower case,
// trimmed, valid UTF-8, at most MaxEmailLength bytes, has one @ and a
// local part of 1 to 64 bytes, parses as itself with net/mail, and
// surrounding spaces do not change it; a refused one is ErrInvalidEmail.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"Alice@Example.COM", " bob@example.org\t", "a@b.c", "a@b.1", "a@localhost", "a@[127.0.0.1]",
		"\"quoted\"@example.com", "Name <a@example.com>", "a@@example.com", "a@-x.com", "a@x-.com",
		"ÄÖÜ@exämple.com", "K@example.com", "İ@example.com", "ǅ@example.com", "\xff@example.com",
		"a@example.com ", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".com",
		strings.Repeat("a", 65) + "@example.com", "a(comment)@example.com", "a@example..com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := NormalizeEmail(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) || e != "" {
				t.Fatalf("NormalizeEmail(%q) = %q, %v", s, e, err)
			}
			return
		}
		again, err := NormalizeEmail(e)
		if err != nil || again != e {
			t.Fatalf("NormalizeEmail(%q) = %q, but NormalizeEmail(%q) = %q, %v", s, e, e, again, err)
		}
		local, _, _ := strings.Cut(e, "@")
		switch {
		case e != strings.ToLower(e) || e != strings.TrimSpace(e):
			t.Fatalf("NormalizeEmail(%q) = %q: not lower case and trimmed", s, e)
		case !utf8.ValidString(e) || len(e) > MaxEmailLength:
			t.Fatalf("NormalizeEmail(%q) = %q: invalid UTF-8 or over %d bytes", s, e, MaxEmailLength)
		case strings.Count(e, "@") != 1 || local == "" || len(local) > 64:
			t.Fatalf("NormalizeEmail(%q) = %q: not one @ after a 1-64 byte local part", s, e)
		}
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			t.Fatalf("NormalizeEmail(%q) = %q, which net/mail reads as %v, %v", s, e, a, err)
		}
		if padded, err := NormalizeEmail(" \t" + s + "\n "); err != nil || padded != e {
			t.Fatalf("NormalizeEmail of %q with spaces around = %q, %v; want %q", s, padded, err, e)
		}
	})
}
