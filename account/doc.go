// Package account holds the account rules of sessiond: registration,
// sign-in with brute-force lockout, password hashing (argon2id), password
// policy, password changes and resets, profiles and deletion. Like package
// sessiond it does no I/O of its own: storage is reached through the Store
// interface, time through an injected clock and randomness through an
// injected reader.
//
//	svc, err := account.NewService(store, account.Config{}) // zero Config = documented defaults
//	u, err := svc.Register(ctx, "ada@example.com", "a long passphrase", nil)
//	u, err = svc.Authenticate(ctx, "Ada@Example.com", "a long passphrase")
//
// Stores live in their own packages (memstore, sqlite, ...), and every one
// of them passes the conformance suite storetest.RunAccounts.
package account
