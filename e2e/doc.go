// Package e2e holds sessiond's black-box test suite: TestMain builds the
// real binary once, each test starts it on free loopback ports with its own
// SQLite file, and talks to it over plain HTTP against the contract in
// docs/http-api.md. The package has no code of its own.
//
// Every request to a sessiond listener and every answer is also checked
// against api/openapi.yaml (openapi_test.go), and the run fails, listing
// them, when one does not match: a client generated from the document must
// never meet an answer it does not describe. A test that sends a request
// the document does not allow on purpose (malformed JSON, a wrong method)
// marks it with offContract; its answer is still checked.
//
//	go test -race ./e2e/
//
// Set E2E_SERVER_RACE=1 to build the server itself with the race detector
// too (slower), E2E_SESSIOND_BINARY=path to test a prebuilt binary instead,
// and E2E_KEEP_LOGS=1 to print every server's log.
//
// The hardening tests run here too: crash durability under SIGKILL on
// SQLite and PostgreSQL (crash_test.go; SESSIOND_CRASH_ROUNDS sets the
// rounds, 20 by default and 3 with -short), password guessing, hostile
// input, slow clients and idle connections (abuse_test.go), enumeration
// timing with production hashing (enumeration_test.go), and a soak
// (soak_test.go): 20 seconds by default, SESSIOND_SOAK=10m for the real one
// (scripts/soak.sh).
package e2e
