package storetest

import (
	"context"
	"testing"

	"github.com/sessiond/sessiond"
)

// Bench runs the Manager benchmarks over stores made by newStore: Create,
// ValidateHit (a known token, within the touch interval), ValidateMiss (a
// well-formed unknown token: one store lookup), ValidateMalformed (refused
// before the store), Rotate and SetData. Every backend calls it so the
// figures compare.
func Bench(b *testing.B, newStore func(b *testing.B) sessiond.Store) {
	setup := func(b *testing.B) (*sessiond.Manager, context.Context) {
		m, err := sessiond.NewManager(newStore(b), sessiond.Policy{})
		if err != nil {
			b.Fatal(err)
		}
		return m, context.Background()
	}
	b.Run("Create", func(b *testing.B) {
		m, ctx := setup(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1", UserAgent: chromeUA, IP: "192.0.2.1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ValidateHit", func(b *testing.B) {
		m, ctx := setup(b)
		toks := make([]string, 1000)
		for i := range toks {
			_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = tok
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.Validate(ctx, toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ValidateMiss", func(b *testing.B) {
		m, ctx := setup(b)
		tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Validate(ctx, tok); err == nil {
				b.Fatal("unknown token validated")
			}
		}
	})
	b.Run("ValidateMalformed", func(b *testing.B) {
		m, ctx := setup(b)
		tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
		tok = tok[:len(tok)-1] + "A"
		if tok[len(tok)-1] == 'A' && sessiond.ParseToken(tok) == nil {
			tok = tok[:len(tok)-1] + "B"
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Validate(ctx, tok); err == nil {
				b.Fatal("malformed token validated")
			}
		}
	})
	b.Run("Rotate", func(b *testing.B) {
		m, ctx := setup(b)
		_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, tok, err = m.Rotate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SetData", func(b *testing.B) {
		m, ctx := setup(b)
		s, _, err := m.Create(ctx, sessiond.CreateParams{})
		if err != nil {
			b.Fatal(err)
		}
		val := []byte(`{"items":["book","pen"]}`)
		b.ReportAllocs()
		for b.Loop() {
			if err := m.SetData(ctx, s.ID, "cart", val); err != nil {
				b.Fatal(err)
			}
		}
	})
}
