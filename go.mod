module github.com/sessiond/sessiond

go 1.26.8

require (
	github.com/boyter/go-string v1.0.5 // indirect
	github.com/medama-io/go-useragent v1.2.5 // indirect
)
