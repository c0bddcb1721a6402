package sessiond

import (
	"strings"
	"sync"

	"github.com/medama-io/go-useragent"
)

// maxUserAgentLen bounds what a session keeps of a User-Agent header.
const maxUserAgentLen = 512

var (
	uaOnce   sync.Once
	uaParser *useragent.Parser
)

// ParseDevice describes the client behind a User-Agent header: browser and
// operating system family ("Firefox", "Windows"), empty where unknown. The
// parser is a trie built once on first use; parsing does not allocate.
func ParseDevice(userAgent string) Device {
	userAgent = strings.ToValidUTF8(userAgent, "")
	if len(userAgent) > maxUserAgentLen {
		userAgent = userAgent[:maxUserAgentLen]
	}
	d := Device{UserAgent: userAgent}
	if userAgent == "" {
		return d
	}
	uaOnce.Do(func() { uaParser = useragent.NewParser() })
	a := uaParser.Parse(userAgent)
	d.Browser = string(a.Browser())
	d.OS = string(a.OS())
	return d
}
