// Package sessiond holds the session rules of sessiond: tokens, lifetimes,
// sliding expiry, rotation, revocation, per-user limits, anonymous sessions
// and their data. It does no I/O of its own: storage is reached through the
// Store interface, time through an injected clock and randomness through an
// injected reader, so the rules are the same whether sessiond runs as a
// server or inside a Go program as a library.
//
// The usual entry point is a Manager:
//
//	m, err := sessiond.NewManager(store, sessiond.Policy{}) // zero Policy = documented defaults
//	sess, token, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
//	sess, err = m.Validate(ctx, token)
//
// Stores live in their own packages (memstore, sqlite, ...), and every one of
// them passes the conformance suite in package storetest.
package sessiond
