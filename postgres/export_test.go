package postgres

// For the tests of package postgres_test.
var (
	TestURL    = testURL
	TestSchema = testSchema
	OpenTest   = openTest
	OpenSchema = openSchema
	AdminConn  = adminConn
	MaxPayload = maxPayload
)
